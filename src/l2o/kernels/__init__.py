"""Compiled kernels, built once per machine and cached; the library's PyTorch implementation where they cannot be.

``lstm_step`` (lstm_step.cpp) fuses a whole coordinatewise LSTM step, with its own backward pass (the
learned optimizer's step, evaluation and first-order meta-training on float32 CPU tensors); ``fused_lstm``
binds it to autograd. How a build is made, cached and kept safe from killed or concurrent processes:
``l2o.kernels.build``.

Asking for the kernel (``lstm_step()``) loads it from the cache, or compiles it there and waits (30–60 s,
once per machine; ``python -m l2o.kernels`` does it ahead and says which implementation is in use). The
answer is settled once per process: a rule's implementation never depends on timing. Set ``L2O_KERNELS=0``
to never use compiled kernels.
"""

from __future__ import annotations

import os
import platform
import threading
import warnings
from pathlib import Path

from l2o.kernels.build import BuildError, Spec, cache_dir, obtain

_SOURCE = Path(__file__).with_name("lstm_step.cpp")


class KernelUnavailableWarning(RuntimeWarning):
    """The learned optimizer runs on PyTorch because the fused kernel cannot be had (said once per process)."""


def _x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


def _flags(x86: bool) -> list[str]:
    """The compiler flags. -mno-recip on x86: GCC's -ffast-math turns the vectorised division in σ into a
    reciprocal estimate (12 bits without AVX-512, 14 with) and a Newton step; where the CPU's estimate of 1/1 is
    not exactly 1, σ of a saturated gate comes out one rounding step below 1, keeps a spurious slope σ(1 − σ),
    and meta-gradients through saturated gates are off. Measured: without AVX-512 on every machine tried; with
    AVX-512 on an Intel Xeon, not on an AMD EPYC (tests/test_kernels.py, the saturated cases). So the division
    is exact everywhere."""
    return ["-O3", "-march=native", "-ffast-math", "-fopenmp"] + (["-mno-recip"] if x86 else [])


def spec(flags: list[str] | None = None) -> Spec:
    """The fused LSTM kernel built with ``flags`` (default: this machine's)."""
    flags = _flags(_x86()) if flags is None else flags
    return Spec("l2o_lstm_step", _SOURCE, tuple(flags), ("-fopenmp",))


_lock = threading.Lock()
_state: dict = {"resolved": False, "module": None, "error": None, "facts": {}}
_warned: set[str] = set()


def enabled() -> bool:
    return os.environ.get("L2O_KERNELS", "1") != "0"


def lstm_step():
    """The compiled fused LSTM step, or None if it cannot be had here (``status()["error"]`` says why).

    Settled once per process: a cached build is loaded; otherwise it is compiled now (the caller waits).
    """
    if not enabled():
        return None
    with _lock:
        if not _state["resolved"]:
            try:
                _state["module"], _state["facts"] = obtain(spec())
            except Exception as e:  # noqa: BLE001 - whatever stops the build, the PyTorch path remains
                _state["error"] = f"{type(e).__name__}: {e}"
            _state["resolved"] = True
    return _state["module"]


def status() -> dict:
    """Whether the fused kernel is in use in this process, its build name and file, and any error."""
    if not enabled():
        return {"ready": False, "error": "disabled by L2O_KERNELS=0", "name": None}
    lstm_step()
    facts = _state["facts"]
    return {"ready": _state["module"] is not None, "error": _state["error"], "name": facts.get("name"),
            "path": facts.get("path"), "built": facts.get("built"), "seconds": facts.get("seconds")}


def build_name() -> str | None:
    """The build identity recorded with results that used the fused kernel (None where it is not in use)."""
    return status()["name"]


def unavailable_reason() -> str:
    return status()["error"] or "unknown"


def warn_unavailable() -> None:
    """Say once per process that the learned optimizer runs without the fused kernel, and why."""
    reason = unavailable_reason()
    if "unavailable" in _warned:
        return
    _warned.add("unavailable")
    warnings.warn(
        f"l2o: the LSTM optimizer runs on its PyTorch implementation (5-20x slower) because the fused kernel "
        f"is not available: {reason[:500]}. `python -m l2o.kernels` builds it and says more.",
        KernelUnavailableWarning, stacklevel=3)


__all__ = ["BuildError", "KernelUnavailableWarning", "build_name", "cache_dir", "enabled", "lstm_step", "spec",
           "status", "warn_unavailable"]
