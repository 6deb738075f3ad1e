"""`python -m mailcatcher`: the same entry point as the console script."""

import sys

from mailcatcher.cli import main

if __name__ == "__main__":
    sys.exit(main())
