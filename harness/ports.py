"""Free ports for the servers that tests start.

A port is free when it is picked and taken a moment later, when the server that was
handed it binds it (a subprocess may take seconds to get there). make test runs
several test processes at once, each picking ports at random: two of them could
pick the same free port in that moment, and the slower server fails with "address
already in use" (seen in make test runs). So each test process picks from a slice
of its own: pytest-xdist's workers (gw0, gw1, ...) and the process that runs the
serial tests beside them (or a benchmark) never pick the same port; and a process
never hands out one of its last few ports again (a stack asks for five at once).
"""

import os
from collections import deque
from collections.abc import Iterable
from functools import cache

import port_for

SLICES = 17  # the serial run, and up to 16 xdist workers
REMEMBERED = 64  # ports handed out that a process will not hand out again
_handed_out: deque[int] = deque(maxlen=REMEMBERED)


@cache
def _mine(worker: str) -> frozenset[int]:
    """The ports port_for calls good (no ephemeral or well-known ones) in this slice."""
    index = int(worker.removeprefix("gw")) % (SLICES - 1) + 1 if worker.startswith("gw") else 0
    return frozenset(port for port in port_for.available_good_ports() if port % SLICES == index)


def free_port(exclude_ports: Iterable[int] = ()) -> int:
    """A port nothing listens on now, from this process's slice."""
    mine = set(_mine(os.environ.get("PYTEST_XDIST_WORKER", "")))  # "": not under xdist
    port = port_for.select_random(mine, exclude_ports={*exclude_ports, *_handed_out})
    _handed_out.append(port)
    return port
