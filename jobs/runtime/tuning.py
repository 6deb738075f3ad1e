"""Speed work on RQ's worker, kept apart from the reference (jobs/worker.py).

RQ's bookkeeping costs about 24 Redis round trips per job, each costing CPU on both
ends; ten of them are the worker's heartbeat, sent four or five times per job. The
class below sends it at most every few seconds. TunedWorker is PoolWorker with
it, and jobs/runtime/pool.py runs it unless WORKER_TUNING=off (then the plain worker).
A trick stays here only while `make bench` shows it gains at least 5% in jobs/s
(docs/benchmarks.md, "Speed work, trick by trick"); three more RQ overrides did
not, and were removed (bench/removed_tricks.py keeps them to measure).

It leans on how RQ's worker loop calls heartbeat(). So RQ is pinned to the minor
version it was tested on, and OVERRIDDEN lists every member of RQ it touches:
tests/jobs/runtime/test_tuning.py fails, naming the member, when an RQ upgrade changes one.
"""

import time

from rq.worker.base import BaseWorker

from jobs.runtime.workers import PoolWorker

# A worker's key in Redis lives for minutes after its last heartbeat (RQ's worker_ttl,
# or the job's timeout + 60 s while it runs one), so one heartbeat in this long keeps it
# just as alive as RQ's four or five per job.
HEARTBEAT_EVERY_SECONDS = 5

# RQ member -> the parameters we rely on (a method) or None (an attribute).
OVERRIDDEN: dict[str, tuple[str, ...] | None] = {
    "heartbeat": ("self", "timeout", "pipeline"),
}


class ThrottledHeartbeat(BaseWorker):
    _next_heartbeat = 0.0

    def heartbeat(self, timeout: int | None = None, pipeline=None) -> None:
        """Inside a pipeline a heartbeat is free, so it always goes; on its own, at most
        one every HEARTBEAT_EVERY_SECONDS, and in one round trip instead of two."""
        if pipeline is not None:
            return super().heartbeat(timeout, pipeline)
        if time.monotonic() < self._next_heartbeat:
            return
        with self.connection.pipeline(transaction=False) as pipe:
            super().heartbeat(timeout, pipe)
            pipe.execute()
        self._next_heartbeat = time.monotonic() + HEARTBEAT_EVERY_SECONDS


TRICKS = {"heartbeat": ThrottledHeartbeat}


class TunedWorker(ThrottledHeartbeat, PoolWorker):
    """PoolWorker with every trick above."""


def worker_class(setting: str) -> type[PoolWorker]:
    """WORKER_TUNING: "on" (every trick), "off" (the plain worker), or trick names
    separated by commas (one at a time, as `make bench` measures them)."""
    if setting == "on":
        return TunedWorker
    if setting == "off":
        return PoolWorker
    chosen = tuple(TRICKS[name.strip()] for name in setting.split(",") if name.strip())
    return type("TunedWorker", (*chosen, PoolWorker), {})
