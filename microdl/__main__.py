"""``python -m microdl``: the same command line as ``microdl`` (:mod:`microdl.cli`)."""

import sys

from microdl.cli import main

if __name__ == "__main__":
    sys.exit(main())
