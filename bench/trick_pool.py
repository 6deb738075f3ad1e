"""jobs.runtime.pool with removed tricks patched in (bench/removed_tricks.py), for bench/tricks.py.

python -m bench.trick_pool address-pairs,gc-freeze --workers 4 --url ... mailers
"""

import sys

from bench.removed_tricks import PATCHES
from jobs.runtime import pool

if __name__ == "__main__":
    names, *rest = sys.argv[1:]
    for name in filter(None, names.split(",")):
        PATCHES[name]()
    pool.main(rest)
