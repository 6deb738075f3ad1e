"""Ctrl-C on `make dev`, pressed the way a terminal presses it: SIGINT to the whole
foreground process group (make, its shell and honcho), while honcho's own SIGTERM
reaches every Procfile process at once.

A learner's first Ctrl-C used to end in tracebacks: Redis stopped under the worker
pool, which then took its own workers' warm shutdown for deaths ("Worker … is dead")
and failed to look up their jobs in the Redis that was gone ("could not fail the job
of dead worker"). Now bin/redis outlives the other processes, the stopping pool lets
its workers go quietly, and make waits for honcho and reports no error.
"""

import signal

import pytest

from harness.devstack import WORKER_LISTENING, redis_answers
from harness.polling import wait_for

pytestmark = pytest.mark.slow

NOT_WANTED = (
    "Traceback",
    "is dead",  # RQ's pool mourning a worker it asked to stop
    "could not fail",  # jobs/runtime/pool.py looking for a stopped worker's job
    "sending SIGKILL",  # honcho ran out of patience: something did not stop
    "make: ***",  # make calling the Ctrl-C it was asked for an error
)


# A Ctrl-C in the middle of starting up is another story (RQ raises its stop from the
# signal handler, wherever the process is): this one stops a stack that is up.
STARTED_SECONDS = 60  # a generous bound on a busy machine, never a timing claim
WORKERS = 4  # the Makefile's default


def everything_started(lines: list[str]) -> bool:
    """Every worker of the pool listens, and the cron scheduler has looked at its lock."""
    listening = sum(WORKER_LISTENING in line for line in lines)
    scheduler = any("cron scheduler" in line and ("leads" in line or "stands by" in line)
                    for line in lines)  # fmt: skip
    return listening >= WORKERS and scheduler


def test_ctrl_c_stops_make_dev_in_order_and_without_a_traceback(dev_stack):
    dev_stack.start()  # returns once the web app, the mail catcher and a worker answer
    terminal = dev_stack.dev
    wait_for(lambda: everything_started(terminal.lines), STARTED_SECONDS, "every process to start")
    redis_url = dev_stack.redis_url

    assert dev_stack.stop_dev() == [], "make dev left processes running after Ctrl-C"

    output = terminal.output()
    for words in NOT_WANTED:
        assert words not in output, f"{words!r} after Ctrl-C:\n{output}"
    # make itself is interrupted, as any command is by Ctrl-C (the shell shows 130),
    # but only after honcho stopped everything: its recipe ends well.
    assert terminal.proc.returncode == -signal.SIGINT
    assert dev_stack.workers() == 0 and not redis_answers(redis_url)
