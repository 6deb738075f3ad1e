"""Speed work on RQ's worker, kept apart from the reference (jobs/worker.py).

RQ's bookkeeping costs about 24 Redis round trips per job, each costing CPU on both
ends. Each class below overrides one worker method to skip the round trips that
repeat what was just written; TunedWorker is AppSimpleWorker with all of them, and
jobs/pool.py runs it unless WORKER_TUNING=off (then the plain AppSimpleWorker).
Each one stays only while `make bench` shows it gains at least 5% in jobs/s
(docs/benchmarks.md, "Speed work, trick by trick").

They lean on how RQ's worker loop calls these methods, and one reads a private
attribute. So RQ is pinned to the minor version they were tested on, and
OVERRIDDEN lists every member of RQ they touch: tests/jobs/test_tuning.py fails,
naming the member, when an RQ upgrade changes one.
"""

import time

from rq.job import Job
from rq.utils import now
from rq.worker.base import BaseWorker

from jobs.worker import AppSimpleWorker

# A worker's key in Redis lives for minutes after its last heartbeat (RQ's worker_ttl,
# or the job's timeout + 60 s while it runs one), so one heartbeat in this long keeps it
# just as alive as RQ's four or five per job.
HEARTBEAT_EVERY_SECONDS = 5
# `rq suspend` is noticed within this long, instead of costing a round trip per job.
SUSPENSION_CHECK_EVERY_SECONDS = 1

# RQ member -> the parameters we rely on (a method) or None (an attribute).
OVERRIDDEN: dict[str, tuple[str, ...] | None] = {
    "heartbeat": ("self", "timeout", "pipeline"),
    "set_state": ("self", "state", "pipeline"),
    "check_for_suspension": ("self", "burst"),
    "handle_execution_ended": ("self", "job", "queue", "heartbeat_ttl"),
    "_state": None,  # private: the state set last (read by SkipRepeatedState)
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


class SkipRepeatedState(BaseWorker):
    def set_state(self, state: str, pipeline=None) -> None:
        """RQ sets `idle` after each job and again before taking the next one."""
        if pipeline is None and state == self._state:
            return
        super().set_state(state, pipeline)


class ThrottledSuspensionCheck(BaseWorker):
    _next_suspension_check = 0.0

    def check_for_suspension(self, burst: bool) -> None:
        if time.monotonic() < self._next_suspension_check:
            return
        super().check_for_suspension(burst)
        self._next_suspension_check = time.monotonic() + SUSPENSION_CHECK_EVERY_SECONDS


class LightExecutionEnd(BaseWorker):
    def handle_execution_ended(self, job: Job, queue, heartbeat_ttl: int) -> None:
        """RQ's job heartbeat here keeps the job registered while a success callback
        runs; our jobs have none, so only the end time is kept."""
        if job.success_callback is not None:
            return super().handle_execution_ended(job, queue, heartbeat_ttl)
        job.ended_at = now()


TRICKS = {
    "heartbeat": ThrottledHeartbeat,
    "state": SkipRepeatedState,
    "suspension": ThrottledSuspensionCheck,
    "execution-end": LightExecutionEnd,
}


class TunedWorker(
    ThrottledHeartbeat,
    SkipRepeatedState,
    ThrottledSuspensionCheck,
    LightExecutionEnd,
    AppSimpleWorker,
):
    """AppSimpleWorker with every trick above."""


def worker_class(setting: str) -> type[AppSimpleWorker]:
    """WORKER_TUNING: "on" (every trick), "off" (the plain worker), or trick names
    separated by commas (one at a time, as `make bench` measures them)."""
    if setting == "on":
        return TunedWorker
    if setting == "off":
        return AppSimpleWorker
    chosen = tuple(TRICKS[name.strip()] for name in setting.split(",") if name.strip())
    return type("TunedWorker", (*chosen, AppSimpleWorker), {})
