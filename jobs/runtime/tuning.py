"""Speed work on RQ's worker, kept apart from the reference (jobs/worker.py).

RQ's bookkeeping costs about 24 Redis round trips per job, each costing CPU on both
ends. Three tricks here cut them to about 9.5, every record RQ keeps still kept:

- the worker's heartbeat, sent four or five times per job, goes at most every few
  seconds (ThrottledHeartbeat);
- a job's start is one transaction instead of three round trips, and its end one
  instead of six (LeanBookkeeping);
- `rq suspend` is looked for once a second, not before every job, and the job's
  heartbeat after it ran goes with its end transaction (FewerRoundTrips).

TunedWorker is PoolWorker with all three, and jobs/runtime/pool.py runs it unless
WORKER_TUNING=off (then the plain worker). A trick stays here only while `make bench`
shows it gains at least 5% in jobs/s (docs/benchmarks.md, "Speed work, trick by
trick"); others did not, and were removed (bench/removed_tricks.py keeps them to
measure).

They lean on how RQ's worker loop calls these methods and on members of RQ's job
they call. So RQ is pinned to the minor version it was tested on, and OVERRIDDEN and
CALLED list every member of RQ they touch: tests/jobs/runtime/test_tuning.py fails,
naming the member, when an RQ upgrade changes one.
"""

import time

from rq import Queue
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.utils import now
from rq.worker.base import BaseWorker, WorkerStatus

from jobs.runtime.workers import PoolWorker

# A worker's key in Redis lives for minutes after its last heartbeat (RQ's worker_ttl,
# or the job's timeout + 60 s while it runs one), so one heartbeat in this long keeps it
# just as alive as RQ's four or five per job.
HEARTBEAT_EVERY_SECONDS = 5

# `rq suspend` stops a worker from taking jobs within this long.
SUSPENSION_CHECK_EVERY_SECONDS = 1

# RQ member -> the parameters we rely on (a method) or None (an attribute).
OVERRIDDEN: dict[str, tuple[str, ...] | None] = {
    "heartbeat": ("self", "timeout", "pipeline"),
    "prepare_execution": ("self", "job"),
    "prepare_job_execution": ("self", "job", "remove_from_intermediate_queue"),
    "handle_job_success": ("self", "job", "queue", "started_job_registry"),
    "set_state": ("self", "state", "pipeline"),
    "_state": None,
    "check_for_suspension": ("self", "burst"),
    "handle_execution_ended": ("self", "job", "queue", "heartbeat_ttl"),
}
# RQ's job members the tricks call as RQ's worker does, with the parameters used.
CALLED: dict[str, tuple[str, ...]] = {
    "prepare_for_execution": ("self", "worker_name", "pipeline"),
    "_handle_success": (
        "self",
        "result_ttl",
        "pipeline",
        "worker_name",
        "execution_id",
        "execution_started_at",
        "execution_ended_at",
    ),
    "cleanup": ("self", "ttl", "pipeline", "remove_from_queue"),
    "get_status": ("self", "refresh"),
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


class LeanBookkeeping(BaseWorker):
    """RQ's start of a job in one transaction and its end in one, with the same
    records: the execution, the registries, the job's state and result, the worker's
    state and counters. RQ spends three round trips on the start and six on the end:
    the job's dependents watched and read, its status and worker state set again, and
    `idle` sent twice. A job with dependents still has them enqueued, once the
    transaction that finishes it has read them; a job that repeats takes RQ's path."""

    def prepare_execution(self, job: Job) -> Execution:
        """What RQ's prepare_execution and prepare_job_execution write, together."""
        ttl = self.get_heartbeat_ttl(job)
        with self.connection.pipeline() as pipeline:
            self.execution = Execution.create(job, ttl, pipeline=pipeline, worker_name=self.name)
            self.set_state(WorkerStatus.BUSY, pipeline=pipeline)
            self.set_current_job_id(job.id, pipeline=pipeline)
            self.set_current_job_working_time(0, pipeline=pipeline)
            self.heartbeat(ttl, pipeline=pipeline)
            job.heartbeat(now(), ttl, pipeline=pipeline)
            job.prepare_for_execution(self.name, pipeline=pipeline)
            if len(self.queues) == 1:
                queue = Queue(job.origin, connection=self.connection)
                pipeline.lrem(queue.intermediate_queue_key, 1, job.id)
            pipeline.execute()
        self.procline(f"Processing {job.func_name} from {job.origin} since {time.time()}")
        return self.execution

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False):
        """Written by prepare_execution, in its transaction."""

    def handle_job_success(
        self, job: Job, queue: Queue, started_job_registry: StartedJobRegistry
    ) -> None:
        if job.repeats_left:
            return super().handle_job_success(job, queue, started_job_registry)
        result_ttl = job.get_result_ttl(self.default_result_ttl)
        with self.connection.pipeline() as pipeline:
            pipeline.multi()
            pipeline.smembers(job.dependents_key)
            self.increment_successful_job_count(pipeline=pipeline)
            self.increment_total_working_time(job.ended_at - job.started_at, pipeline)
            if result_ttl != 0:
                execution = self.execution  # None when perform_job is called on its own
                job._handle_success(
                    result_ttl,
                    pipeline=pipeline,
                    worker_name=self.name,
                    execution_id=execution.id if execution else None,
                    execution_started_at=execution.created_at if execution else None,
                    execution_ended_at=job.ended_at,
                )
            job.cleanup(result_ttl, pipeline=pipeline, remove_from_queue=False)
            self.cleanup_execution(job, pipeline=pipeline)
            # Idle in Redis with the rest, but busy here until RQ sets idle after the
            # job: a stop signal until then waits for the job's end (RQ's warm shutdown
            # asks this state), as with RQ.
            busy = self._state
            super().set_state(WorkerStatus.IDLE, pipeline=pipeline)
            self._state = busy
            dependents, *_ = pipeline.execute()
        self._idle_written = True
        if dependents:  # the job is finished now: RQ enqueues those whose every dependency is
            queue.enqueue_dependents(job)
        taken = job.ended_at - job.started_at
        if self.log_job_description:  # RQ's line, as RQ writes it
            self.log.info(
                "Successfully completed %s job in %ss on worker %s",
                job.description,
                taken,
                self.name,
            )
        else:
            self.log.info(
                "Successfully completed job %s in %ss on worker %s", job.id, taken, self.name
            )

    _idle_written = False  # by the end of the last job, not yet set here

    def set_state(self, state: str, pipeline=None) -> None:
        """RQ sets `idle` after each job and again before taking the next one; after a
        success the job's end has written it already."""
        if pipeline is None and state == WorkerStatus.IDLE and self._idle_written:
            self._state = state
        if pipeline is None and state == self._state:
            self._idle_written = False
            return
        self._idle_written = False
        super().set_state(state, pipeline)


class FewerRoundTrips(BaseWorker):
    """Two of RQ's round trips per job that buy nothing here: the `rq suspend` check
    before every job (once a second is soon enough for a person typing it), and the
    job's heartbeat alone after it ran (the end transaction writes the job's whole hash
    again, that heartbeat included)."""

    _next_suspension_check = 0.0

    def check_for_suspension(self, burst: bool) -> None:
        if time.monotonic() < self._next_suspension_check:
            return
        super().check_for_suspension(burst)
        self._next_suspension_check = time.monotonic() + SUSPENSION_CHECK_EVERY_SECONDS

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        """In RQ 2.12 the heartbeat here is the job's `last_heartbeat` field alone. A
        job that failed takes RQ's path: its end is not LeanBookkeeping's."""
        if job.get_status(refresh=False) == JobStatus.FAILED:
            return super().handle_execution_ended(job, queue, heartbeat_ttl)
        job.ended_at = job.last_heartbeat = now()


TRICKS = {
    "heartbeat": ThrottledHeartbeat,
    "lean-bookkeeping": LeanBookkeeping,
    "round-trips": FewerRoundTrips,
}


class TunedWorker(ThrottledHeartbeat, LeanBookkeeping, FewerRoundTrips, PoolWorker):
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
