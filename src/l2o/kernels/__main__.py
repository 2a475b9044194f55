"""``python -m l2o.kernels``: build (or load from the cache) the compiled kernels and say how long it took."""

import sys

from l2o import kernels

module = kernels.lstm_step(wait=True)
info = kernels.build_info()
if module is None:
    print(f"l2o kernels: not built ({info['error'] or 'disabled by L2O_KERNELS=0'}); PyTorch is used instead")
    sys.exit(0)
print(f"l2o kernels: ready ({info['seconds']:.1f} s)")
