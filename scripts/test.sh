#!/usr/bin/env bash
# The tests: set up, then run the whole test suite (a few minutes on a 2-core CPU). Extra flags go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
