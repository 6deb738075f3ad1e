"""The default way to run workers: RQ's WorkerPool of non-forking PoolWorkers
(jobs/runtime/workers.py; jobs/runtime/tuning.py's TunedWorker unless
WORKER_TUNING=off).

    python -m jobs.runtime.pool --workers 2 mailers default maintenance

Why not `rq worker`: it forks a work horse for every job, about 17 ms of CPU per job
on top of the job's own ~4 ms (docs/benchmarks.md). A SimpleWorker runs jobs in its
own process instead, and what the fork bought, isolation, comes from the pool:

- A job that kills its process (SIGKILL, out of memory, a segfault) takes down one
  worker. The pool sees it within a second, fails the job the dead worker was
  running the way a forking worker fails a job whose horse died (on_send_failure
  records the attempt, RQ retries it with backoff, the last attempt raises the red
  flag), and starts a fresh worker. Without this, the job would wait for its
  started-registry entry to expire (its timeout plus 60 s) and for RQ's next
  maintenance pass (10 minutes), or for the sweeper (jobs/sweeper.py).
- A worker that ends for any other reason (Redis restarted under it, it retired to
  free its memory) is replaced the same way.
- Once the pool itself is stopping (SIGTERM, Ctrl-C), it passes the stop to each
  worker, which finishes its email job within WORKER_STOP_GRACE_SECONDS or hands it
  back to its queue (jobs/runtime/shutdown.py). A worker that then exits cleanly did what it
  was asked: it is not mourned, and its job is not looked for. One that dies mid-stop
  (killed) still is, while Redis is there to record it: bin/redis keeps it up until
  the pool is gone.

Queues are listed in priority order: a worker always takes from the first
non-empty one, so mail goes before alerts, and both before housekeeping.
"""

import argparse
import logging
import os
import signal

from redis import Redis
from rq import Queue
from rq.executions import Execution
from rq.worker_pool import WorkerData, WorkerPool

from app.config import DEFAULT_REDIS_URL
from app.ops.redis_connection import connect
from jobs import QUEUES
from jobs.runtime import tuning
from jobs.runtime.workers import PoolJob, PoolWorker
from jobs.worker import WorkHorseKilled, get_app, prepare_app

# Named, not __name__: run as `python -m jobs.runtime.pool` this module is __main__, whose
# logger has no handler, and the pool's lines would be lost (or printed bare).
log = logging.getLogger("jobs.runtime.pool")

# RQ members this module leans on beyond its documented use ("Class.member" -> the
# parameters relied on, or None for an attribute RQ sets in __init__): failing a dead
# worker's job is RQ's own work-horse handling, done from the pool.
# tests/jobs/runtime/test_pool.py fails, naming one, when an RQ upgrade changes it.
RELIED_ON: dict[str, tuple[str, ...] | None] = {
    "rq.worker_pool.WorkerPool.handle_dead_worker": ("self", "worker_data"),
    "rq.worker_pool.WorkerPool.worker_dict": None,
    "rq.worker.Worker.find_by_key": (
        "worker_key",
        "connection",
        "job_class",
        "queue_class",
        "serializer",
    ),
    "rq.worker.Worker.execution": None,
    "rq.worker.Worker.handle_job_failure": (
        "self",
        "job",
        "queue",
        "started_job_registry",
        "exc_string",
    ),
    "rq.worker.Worker.register_death": ("self",),
    "rq.executions.Execution.fetch": ("id", "job_id", "connection"),
}

# How a worker the pool asked to stop ends: 0 (RQ's warm shutdown), or killed by the
# stop signal itself when it came before the worker set up its handlers.
STOPPED = (0, -signal.SIGINT, -signal.SIGTERM)


class AppWorkerPool(WorkerPool):
    def handle_dead_worker(self, worker_data: WorkerData) -> None:
        if self.status == self.Status.STOPPED and worker_data.process.exitcode in STOPPED:
            # The pool is stopping (Ctrl-C, SIGTERM) and asked this worker to stop: it
            # finished its job and exited cleanly (or was stopped by the signal before it
            # took one). That is no death, and there is no job to fail (RQ's own handler
            # would say "is dead").
            self.worker_dict.pop(worker_data.name, None)
            log.info("worker %s stopped", worker_data.name)
            return
        super().handle_dead_worker(worker_data)
        exitcode = worker_data.process.exitcode
        try:
            job_id = fail_current_job(self.connection, worker_data.name, exitcode)
        except Exception:  # the pool must go on (Redis may be down: RQ's sweep catches up)
            log.exception("could not fail the job of dead worker %s", worker_data.name)
            return
        if job_id:
            log.warning(
                "worker %s died (exit code %s) while running job %s: "
                "failed it (retried if it can be)",
                worker_data.name,
                exitcode,
                job_id,
            )


def fail_current_job(connection: Redis, worker_name: str, exitcode: int | None) -> str | None:
    """Fail the job a dead worker was running, as RQ fails a job whose work horse died
    (and as AppWorker adds: with its failure callback); returns the job's id."""
    key = PoolWorker.redis_worker_namespace_prefix + worker_name
    worker = PoolWorker.find_by_key(key, connection=connection, job_class=PoolJob)
    if worker is None:
        return None
    job_id = worker.get_current_job_id()
    if job_id:
        job = PoolJob.fetch(job_id, connection=connection)
        worker.execution = _execution(job)
        error = WorkHorseKilled(f"the worker process died ({_exit(exitcode)}) running the job")
        with get_app().app_context():
            job.execute_failure_callback(worker.death_penalty_class, WorkHorseKilled, error, None)
        queue = Queue(job.origin, connection=connection)
        worker.handle_job_failure(job, queue, exc_string=str(error))
    worker.register_death()
    return job_id


def _execution(job: PoolJob) -> Execution | None:
    """The job's entry in its started registry, which handle_job_failure removes."""
    for found_id, execution_id in job.started_job_registry.get_job_and_execution_ids(cleanup=False):
        if found_id == job.id:
            return Execution.fetch(execution_id, job.id, connection=job.connection)
    return None


def _exit(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.runtime.pool", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--url", default=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
    parser.add_argument("-n", "--workers", type=int, default=4, help="worker processes (4)")
    parser.add_argument("--burst", action="store_true", help="quit once the queues are empty")
    parser.add_argument(
        "--logging-level",
        default="INFO",
        help="RQ's, as `rq worker-pool -l`: INFO (a line as each job starts and ends), "
        "or WARNING (only what went wrong)",
    )
    parser.add_argument("queues", nargs="*", default=list(QUEUES), help="in priority order")
    args = parser.parse_args(argv)
    prepare_app()  # once, here: every worker process forked from the pool inherits it
    connection = connect(args.url)
    # Hold a connection from now until the pool exits: bin/redis stops Redis only once
    # its clients have left, so Redis outlives the pool (which fails the job of a
    # worker that dies mid-stop), not only its workers.
    connection.ping()
    pool = AppWorkerPool(
        args.queues,
        connection=connection,
        num_workers=args.workers,
        worker_class=tuning.worker_class(get_app().config["WORKER_TUNING"]),
        job_class=PoolJob,
    )
    pool.start(burst=args.burst, logging_level=args.logging_level)


if __name__ == "__main__":
    main()
