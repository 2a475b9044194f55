"""Keep freed memory in the process for reuse (glibc's malloc only).

An unrolled optimization allocates its LSTM state anew every step: for the paper's MNIST MLP that is
five buffers of 1.3 MB per step. glibc serves blocks that large with a fresh ``mmap`` and returns them
with ``munmap`` when they are freed, so every step pays for page faults and for the kernel zeroing the
new pages; measured on a 2-core machine, the fused LSTM step took 3.4–4.0 ms with fresh output
buffers against 2.1 ms with reused ones. Raising glibc's mmap threshold (to 32 MiB, its maximum) and
its trim threshold keeps such blocks in the heap, where the next step reuses them, as PyTorch's own
caching allocator does on a GPU. The cost: memory a process has freed stays mapped (up to
``TRIM_BYTES``) instead of going back to the system; the peak is unchanged.

``retain_freed_memory()`` is called by :func:`l2o.meta.unroll.unroll` (so by meta-training, evaluation
and tuning) once per process. ``L2O_MALLOC_TUNING=0`` leaves malloc alone; on other C libraries
(macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

MMAP_BYTES = 32 * 1024 * 1024  # blocks below this come from the heap (glibc's largest allowed value)
TRIM_BYTES = 512 * 1024 * 1024  # free memory at the top of the heap kept before returning it
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
_done: bool | None = None


def retain_freed_memory() -> bool:
    """Set glibc's malloc thresholds once per process; True if they are in effect."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("L2O_MALLOC_TUNING", "1") == "0" or platform.system() != "Linux":
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_BYTES))
    return _done
