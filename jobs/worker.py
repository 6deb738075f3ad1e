"""Worker classes that give jobs the Flask app they need (Flask-Mail reads its config).

The default, started by the Procfile through jobs/runtime/pool.py, is AppSimpleWorker: a
pool of them, each running its jobs in its own long-lived process. AppWorker is
the forking kind, for ``rq worker``:

    rq worker --worker-class jobs.worker.AppWorker --job-class jobs.worker.AppJob \
        --with-scheduler mailers default maintenance

A stock ``rq worker`` forks a child per job; if each child built the app and
imported Flask-Mail anew, a worker would send a few emails a second. AppWorker
builds the app once in the parent, so every forked child inherits it ready-made;
the fork still costs about 17 ms of CPU per job (docs/benchmarks.md).
"""

import contextlib
import importlib
import os

import psutil
from flask import Flask, has_app_context
from rq import SimpleWorker, Worker
from rq.defaults import DEFAULT_MAINTENANCE_TASK_INTERVAL, DEFAULT_WORKER_TTL
from rq.exceptions import StopRequested
from rq.job import Job

from jobs.runtime import shutdown

_app: Flask | None = None

# Imported in the parent, so that forked children (AppWorker's horses, the pool's
# workers) inherit them instead of importing them per job or per process.
PRELOAD = ("jobs.gif_sender", "jobs.alerts", "jobs.sweeper", "smtplib", "email.mime.multipart")


def get_app() -> Flask:
    """The app for this process, built on first use from the environment."""
    global _app
    if _app is None:
        from app import create_app

        _app = create_app()
    return _app


class AppJob(Job):
    """Runs the job inside an app context: the caller's when there is one (tests, `now`
    delivery), else this process's app; a stopping worker may hand it back meanwhile
    (jobs/runtime/shutdown.py)."""

    def perform(self):
        with shutdown.running(self):
            if has_app_context():
                return super().perform()
            with get_app().app_context():
                return super().perform()


def prepare_app() -> Flask:
    """Build the app and import the job modules, once, before any fork."""
    app = get_app()
    for module in PRELOAD:
        importlib.import_module(module)
    return app


# A Redis restart or failover kills a worker's RQ scheduler (it moves due retries and
# delayed jobs onto the queue), and RQ starts it again only in the worker's maintenance
# pass: at most every 10 minutes by default, and for an idle worker only when its wait
# for a job ends, worker_ttl - 15 s (7 minutes by default). Both every 30 s instead.
MAINTENANCE_SECONDS = 30
WORKER_TTL_SECONDS = MAINTENANCE_SECONDS + 15


def _look_after_the_scheduler(kwargs: dict) -> dict:
    """`rq worker` passes RQ's defaults explicitly: those are replaced too."""
    if kwargs.get("maintenance_interval") in (None, DEFAULT_MAINTENANCE_TASK_INTERVAL):
        kwargs["maintenance_interval"] = MAINTENANCE_SECONDS
    if kwargs.get("worker_ttl") in (None, DEFAULT_WORKER_TTL):
        kwargs["worker_ttl"] = WORKER_TTL_SECONDS
    return kwargs


class AppSimpleWorker(shutdown.HandBackOnStop, SimpleWorker):
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
        super().__init__(*args, **_look_after_the_scheduler(kwargs))
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


class AppWorker(shutdown.StopSignalsToMainThread, Worker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **_look_after_the_scheduler(kwargs))
        prepare_app()

    def handle_work_horse_killed(self, job: Job, retpid: int, ret_val: int, rusage) -> None:
        """RQ fails a job whose horse died (SIGKILL, out of memory, a segfault) without
        calling the job's failure callback: call it here, so the attempt is recorded
        like any other failure and the last one raises the red flag."""
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        error = WorkHorseKilled(_death(ret_val))
        with contextlib.suppress(Exception):  # logged by RQ; the worker must go on
            job.execute_failure_callback(self.death_penalty_class, WorkHorseKilled, error, None)


class WorkHorseKilled(Exception):
    """The process running the job died before the job could say how it went."""


def _death(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"the work horse was killed by signal {os.WTERMSIG(status)}"
    return f"the work horse exited with status {os.waitstatus_to_exitcode(status)}"
