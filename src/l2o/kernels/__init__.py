"""Compiled kernels, built on first use and cached; the library falls back to PyTorch until they are ready.

``lstm_step`` (lstm_step.cpp) fuses a whole coordinatewise LSTM step without autograd (the learned
optimizer's step and evaluation). It is compiled with ``torch.utils.cpp_extension`` into the torch
extensions cache (``TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``) the first time it is
asked for, in a background thread: the caller never waits for the compiler, and keeps using the PyTorch
implementation until the build is done. Each version of the source and the compiler flags is built under
its own name (``l2o_lstm_step_<hash>``), so an upgrade never blocks on rebuilding a stale cached build.
``scripts/setup.sh`` builds it ahead (``python -m l2o.kernels``).
Set ``L2O_KERNELS=0`` to never use compiled kernels. A failed build is reported once and never retried
in that process.
"""

from __future__ import annotations

import hashlib
import os
import platform
import threading
import time
import warnings
from pathlib import Path

_SOURCE = Path(__file__).with_name("lstm_step.cpp")


def _x86_without_avx512() -> bool:
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return False
    try:
        return "avx512f" not in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return True


def _flags(x86_without_avx512: bool) -> list[str]:
    """The compiler flags. -mno-recip on x86 without AVX-512: there GCC's -ffast-math turns the vectorised
    division in σ into a 12-bit estimate and a Newton step, which takes 1/1 one rounding step below 1, so
    saturated gates would keep a spurious slope σ(1 − σ). (With AVX-512 its 14-bit estimate takes 1/1 to 1
    exactly, and the flag would change the rounding of every result meta-trained on such a machine.)"""
    return ["-O3", "-march=native", "-ffast-math", "-fopenmp"] + (["-mno-recip"] if x86_without_avx512 else [])


def _name(flags: list[str]) -> str:
    """The build is named after its source and flags, so that a cached build of another version is never
    taken for this one."""
    return "l2o_lstm_step_" + hashlib.sha256(_SOURCE.read_bytes() + " ".join(flags).encode()).hexdigest()[:12]


def _compile(flags: list[str]):
    """Build (or load from the cache) the kernel compiled with ``flags``."""
    from torch.utils.cpp_extension import load

    return load(name=_name(flags), sources=[str(_SOURCE)], extra_cflags=flags, extra_ldflags=["-fopenmp"],
                verbose=False)


_FLAGS = _flags(_x86_without_avx512())
_NAME = _name(_FLAGS)
_lock = threading.Lock()
_state: dict = {"module": None, "thread": None, "error": None, "seconds": None}


def enabled() -> bool:
    return os.environ.get("L2O_KERNELS", "1") != "0"


def _build() -> None:
    t0 = time.perf_counter()
    try:
        _state["module"] = _compile(_FLAGS)
    except Exception as e:  # noqa: BLE001 - any build failure means: keep the PyTorch path
        _state["error"] = f"{type(e).__name__}: {e}"
        warnings.warn(f"l2o: the fused LSTM kernel could not be built; using PyTorch ({_state['error'][:300]})")
    finally:
        _state["seconds"] = time.perf_counter() - t0


def _cached() -> bool:
    """Whether a build of the kernel is already in the extensions cache (loading it takes a fraction of a second)."""
    try:
        from torch.utils.cpp_extension import _get_build_directory

        return any(Path(_get_build_directory(_NAME, False)).glob(f"{_NAME}*.so"))
    except Exception:  # noqa: BLE001 - a private helper; without it, build in the background
        return False


def lstm_step(wait: bool = False):
    """The compiled module, or None while it is being built (or if it cannot be).

    A build already in the cache is loaded at once; a first build runs in the background unless ``wait``.
    """
    if not enabled():
        return None
    if _state["module"] is not None:
        return _state["module"]
    wait = wait or (_state["thread"] is None and _cached())
    with _lock:
        if _state["error"] is None and _state["thread"] is None:
            _state["thread"] = threading.Thread(target=_build, name="l2o-kernel-build", daemon=True)
            _state["thread"].start()
    if wait and _state["thread"] is not None:
        _state["thread"].join()
    return _state["module"]


def build_info() -> dict:
    """Whether the kernel is ready, how long its build (or cache load) took, and any error."""
    return {"ready": _state["module"] is not None, "seconds": _state["seconds"], "error": _state["error"]}
