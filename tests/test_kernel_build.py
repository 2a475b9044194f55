"""The kernel's build as a user meets it: real processes, real signals, a fresh cache each time.

A build killed before compiling, while compiling or before linking is followed by a process that gets the
kernel; two processes building at once both get it; the build step always returns and says which
implementation is in use; a build made for another CPU is never loaded.
"""

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from l2o import kernels
from l2o.kernels import build

pytestmark = pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                                reason="no C++ compiler on this machine: l2o uses its PyTorch implementation")

BUILD_STEP = [sys.executable, "-m", "l2o.kernels"]


def _env(cache: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("L2O_KERNELS", "L2O_KERNEL_BUILD_TIMEOUT")}
    return {**env, "L2O_KERNEL_CACHE": str(cache), "PYTHONUNBUFFERED": "1", **extra}


def _start(cache: Path, **extra) -> subprocess.Popen:
    return subprocess.Popen(BUILD_STEP, env=_env(cache, **extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _build_dirs(cache: Path) -> list[Path]:
    return list(cache.glob(".l2o_lstm_step_*.build.*"))


def _in_build(cache: Path, filename: str) -> bool:
    return any((d / filename).exists() for d in _build_dirs(cache))


def _published(cache: Path) -> list[Path]:
    return list(cache.glob("l2o_lstm_step_*.so"))


def _processes_mentioning(text: str) -> list[int]:
    """Processes (the compile child, the compiler) whose command line names ``text``."""
    out = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            if text in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                out.append(int(d.name))
        except OSError:
            pass
    return out


def _kill_when(cache: Path, predicate, what: str) -> None:
    proc = _start(cache)
    try:
        _wait_for(lambda: predicate() or proc.poll() is not None, 120, what)
        assert proc.poll() is None, f"the build step ended before {what}: {proc.communicate()[0]}"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert not _published(cache), f"a library was published by a build killed {what}"
    # the compiler goes with the killed process (its child notices the parent's death)
    _wait_for(lambda: not _processes_mentioning(str(cache)), 10, f"the compiler of the build killed {what} to stop")


@pytest.mark.slow
def test_builds_killed_at_any_point_are_followed_by_builds_that_get_the_kernel(tmp_path):
    cache = tmp_path / "cache"
    _kill_when(cache, lambda: bool(_build_dirs(cache)), "before compiling")
    _kill_when(cache, lambda: _in_build(cache, "build.ninja"), "while compiling")
    _kill_when(cache, lambda: _in_build(cache, "lstm_step.o"), "before linking")
    assert _build_dirs(cache)  # the debris of killed builds

    # two processes at once: one builds, the other waits on the lock and loads the same library
    procs = [_start(cache) for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    for out in outputs:
        assert "implementation 'auto' -> 'fused'" in out, out
    assert sum("built now" in out for out in outputs) == 1, outputs
    assert sum("loaded from the cache" in out for out in outputs) == 1, outputs
    assert any("l2o: waiting for " in out for out in outputs), outputs  # the holder, by pid once it wrote it
    assert len(_published(cache)) == 1 and not _build_dirs(cache)  # the debris is gone

    # and the next process loads it at once
    out = subprocess.run(BUILD_STEP, env=_env(cache), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "loaded from the cache" in out.stdout, out


def test_the_build_step_always_returns_and_says_which_implementation(tmp_path):
    """A build that cannot finish in time is stopped (compiler included) and the step says PyTorch is used."""
    cache = tmp_path / "cache"
    t0 = time.monotonic()
    out = subprocess.run(BUILD_STEP, env=_env(cache, L2O_KERNEL_BUILD_TIMEOUT="3"), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out
    assert time.monotonic() - t0 < 60
    assert "did not finish within 3 s" in out.stdout and "implementation 'auto' -> 'torch'" in out.stdout, out
    assert not _published(cache) and not _build_dirs(cache)
    assert not _processes_mentioning(str(cache))
    required = subprocess.run(BUILD_STEP + ["--require"], env=_env(cache, L2O_KERNELS="0"), capture_output=True,
                              text=True, timeout=120)
    assert required.returncode == 1 and "disabled by L2O_KERNELS=0" in required.stdout


def test_a_lock_held_by_a_live_process_is_waited_for_only_so_long(tmp_path):
    """A holder that never finishes (here: this test, holding the lock) does not hang the build step."""
    cache = tmp_path / "cache"
    cache.mkdir()
    name = kernels.spec().name()
    with open(cache / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.write("pid 1 on elsewhere")
        lock.flush()
        out = subprocess.run(BUILD_STEP, env=_env(cache, L2O_KERNEL_BUILD_TIMEOUT="2", CXX="false"),
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out
    assert "waiting for pid 1 on elsewhere" in out.stderr and "gave up waiting after 2 s" in out.stderr, out
    assert "implementation 'auto' -> 'torch'" in out.stdout


def _copy_build_into(cache: Path) -> Path:
    """This machine's build of the kernel, copied into ``cache``; returns the sidecar's path."""
    kernels.lstm_step()
    path, why = build.find(kernels.spec())
    assert why is None
    cache.mkdir()
    shutil.copy(path, cache / path.name)
    sidecar = path.with_name(kernels.spec().name() + ".json")
    shutil.copy(sidecar, cache / sidecar.name)
    return cache / sidecar.name


def test_a_build_made_for_another_cpu_is_never_loaded(tmp_path):
    """A cache shared across machines: a file under this build's name whose sidecar says it was made for
    another CPU is not loaded (here the compiler is made to fail, so the process runs on PyTorch)."""
    sidecar = _copy_build_into(tmp_path / "cache")
    doc = json.loads(sidecar.read_text())
    doc["identity"]["cpu"] = {**doc["identity"]["cpu"], "model name": "another CPU"}
    sidecar.write_text(json.dumps(doc))
    out = subprocess.run(BUILD_STEP, env=_env(tmp_path / "cache", CXX="false"), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out
    assert "is not used: built for another machine or version (differs in: cpu)" in out.stderr, out
    assert "implementation 'auto' -> 'torch'" in out.stdout, out


def test_this_machines_build_in_a_shared_cache_is_loaded_and_a_damaged_one_set_aside(tmp_path):
    sidecar = _copy_build_into(tmp_path / "cache")
    out = subprocess.run(BUILD_STEP, env=_env(tmp_path / "cache"), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "loaded from the cache" in out.stdout, out
    library = next((tmp_path / "cache").glob("l2o_lstm_step_*.so"))
    library.write_bytes(library.read_bytes()[:4096])  # truncated
    out = subprocess.run(BUILD_STEP, env=_env(tmp_path / "cache", CXX="false"), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "is not used: damaged" in out.stderr, out
    assert "implementation 'auto' -> 'torch'" in out.stdout
    assert list((tmp_path / "cache").glob("*.so.bad.*")) and sidecar.exists()
