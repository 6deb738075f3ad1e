"""The workers make dev runs: what the reference classes (jobs/worker.py) become in
production.

- PoolWorker runs each job in its own long-lived process (jobs/runtime/pool.py runs a
  pool of them), hands its email job back when stopped (jobs/runtime/shutdown.py),
  and retires when it has grown.
- ForkingWorker is jobs/worker.py's AppWorker with the same upkeep, for ``rq worker``.
- Both keep RQ's scheduler running after a Redis restart or failover, and hear a
  stop signal at once.
"""

import psutil
from rq import SimpleWorker
from rq.defaults import DEFAULT_MAINTENANCE_TASK_INTERVAL, DEFAULT_WORKER_TTL
from rq.exceptions import StopRequested
from rq.job import Job

from jobs.runtime import shutdown
from jobs.worker import AppJob, AppWorker, prepare_app

# A Redis restart or failover kills a worker's RQ scheduler (it moves due retries and
# delayed jobs onto the queue), and RQ starts it again only in the worker's maintenance
# pass: at most every 10 minutes by default, and for an idle worker only when its wait
# for a job ends, worker_ttl - 15 s (7 minutes by default). Both every 30 s instead.
MAINTENANCE_SECONDS = 30
WORKER_TTL_SECONDS = MAINTENANCE_SECONDS + 15


def _keep_rq_scheduler_running(kwargs: dict) -> dict:
    """`rq worker` passes RQ's defaults explicitly: those are replaced too."""
    if kwargs.get("maintenance_interval") in (None, DEFAULT_MAINTENANCE_TASK_INTERVAL):
        kwargs["maintenance_interval"] = MAINTENANCE_SECONDS
    if kwargs.get("worker_ttl") in (None, DEFAULT_WORKER_TTL):
        kwargs["worker_ttl"] = WORKER_TTL_SECONDS
    return kwargs


class PoolWorker(shutdown.HandBackOnStop, SimpleWorker):
    """Runs each job in this process: no fork, so a job costs its own CPU and little
    more. A job that kills the process (SIGKILL, out of memory, a segfault) takes only
    this worker down; jobs/runtime/pool.py fails that job at once and starts a fresh worker.

    Asked to stop, it gives its email job WORKER_STOP_GRACE_SECONDS to finish, then
    hands it back to its queue unless it is sending (jobs/runtime/shutdown.py).

    A long-lived process must not grow without bound: it retires after
    WORKER_MAX_JOBS jobs (RQ's own ``max_jobs``), or after any job that leaves it
    above WORKER_MAX_MEMORY_MB, and the pool replaces it.
    """

    # Our own line (jobs/gif_sender.py) says how each job went, its id and duration:
    # RQ's "result is kept for 500 seconds" after every job would only repeat the TTL.
    log_result_lifespan = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **_keep_rq_scheduler_running(kwargs))
        config = prepare_app().config
        self.max_jobs = config["WORKER_MAX_JOBS"]
        self.max_memory_bytes = config["WORKER_MAX_MEMORY_MB"] * 1024 * 1024
        self.stop_grace_seconds = config["WORKER_STOP_GRACE_SECONDS"]
        self.process = psutil.Process()

    def work(self, *args, **kwargs) -> bool:
        kwargs.setdefault("max_jobs", self.max_jobs)
        return super().work(*args, **kwargs)

    def execute_job(self, job: Job, queue) -> None:
        super().execute_job(job, queue)
        rss = self.process.memory_info().rss
        if rss > self.max_memory_bytes:
            mb, limit = rss // 2**20, self.max_memory_bytes // 2**20
            self.log.info("Worker %s: retiring, using %d MB, over %d MB", self.name, mb, limit)
            raise StopRequested()  # RQ's loop stops here, before taking another job


class PoolJob(AppJob):
    """AppJob whose run a stopping PoolWorker may hand back until it sends."""

    def perform(self):
        with shutdown.running(self):
            return super().perform()


class ForkingWorker(shutdown.StopSignalsToMainThread, AppWorker):
    """``rq worker --worker-class jobs.runtime.workers.ForkingWorker``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **_keep_rq_scheduler_running(kwargs))
