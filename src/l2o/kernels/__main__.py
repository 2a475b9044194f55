"""``python -m l2o.kernels``: build the compiled kernels (or load them from the cache) and say which
implementation the learned optimizer uses. Always returns: a build is bounded by L2O_KERNEL_BUILD_TIMEOUT.

    python -m l2o.kernels            exit 0 either way (the PyTorch implementation is the fallback)
    python -m l2o.kernels --require  exit 1 if the fused kernel is not available
"""

import sys

from l2o import kernels


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if any(a != "--require" for a in argv):
        print(f"l2o kernels: unknown arguments {argv}; see --help", file=sys.stderr)
        return 2
    info = kernels.status()
    if not info["ready"]:
        print(f"l2o kernels: the fused LSTM kernel is not available ({info['error']}); the learned optimizer uses "
              f"its PyTorch implementation (implementation 'auto' -> 'torch')")
        return 1 if argv else 0
    how = f"built now in {info['seconds']:.1f} s" if info["built"] else f"loaded from the cache in {info['seconds']:.2f} s"
    print(f"l2o kernels: fused LSTM kernel {info['name']} ready ({how}): {info['path']}")
    print("l2o kernels: the learned optimizer uses it for float32 CPU tensors (implementation 'auto' -> 'fused')")
    return 0


sys.exit(main(sys.argv[1:]))
