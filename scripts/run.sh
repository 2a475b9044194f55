#!/usr/bin/env bash
# The main job: set up, then run the whole quadratic experiment (tune the baselines, meta-train the LSTM
# optimizer, evaluate on held-out problems, write the figure and the table). Extra flags go to
# `l2o quadratic` (see `.venv/bin/l2o quadratic --help`); output goes to runs/quadratic by default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/l2o quadratic "$@"
