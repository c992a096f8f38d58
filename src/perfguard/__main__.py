"""Run the perfguard command line with `python -m perfguard`."""

import sys

from perfguard.cli import main

if __name__ == "__main__":
    sys.exit(main())
