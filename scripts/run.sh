#!/usr/bin/env bash
# The main job: set up (environment, dependencies, kernel, MNIST), then run an experiment end to end:
#   bash scripts/run.sh [quadratic|mnist] [flags...]
# quadratic (default, ~5 min): tune the baselines, meta-train the LSTM optimizer, evaluate on held-out
#   problems, write the figure and the table into runs/quadratic.
# mnist (~1.5 h): the MNIST suite, Figures 4 and 5 and the sweep, into runs/mnist.
# Extra flags go to `l2o quadratic` / `l2o mnist` (see `.venv/bin/l2o mnist --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
experiment=quadratic
case "${1:-}" in
  quadratic|mnist) experiment=$1; shift ;;
esac
bash scripts/setup.sh
if [ "$experiment" = mnist ]; then
  .venv/bin/l2o data mnist --check >/dev/null || .venv/bin/l2o data mnist
fi
exec .venv/bin/l2o "$experiment" "$@"
