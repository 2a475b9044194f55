"""``python -m l2o`` (and ``torchrun ... -m l2o``): the l2o command line."""

import sys

from l2o.cli import main

if __name__ == "__main__":
    sys.exit(main())
