"""Worker classes that give jobs the Flask app they need (Flask-Mail reads its config).

The default, started by the Procfile through jobs/pool.py, is AppSimpleWorker: a
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
import gc
import importlib
import os
import time

import psutil
from flask import Flask, has_app_context
from rq import SimpleWorker, Worker
from rq.job import Job
from rq.utils import now

_app: Flask | None = None

# Imported in the parent too, so children do not import them per job.
# A worker's key in Redis lives for minutes after its last heartbeat (RQ's worker_ttl,
# or the job's timeout + 60 s while it runs one), so one heartbeat in this long keeps it
# just as alive as RQ's four or five per job.
HEARTBEAT_EVERY_SECONDS = 5
# `rq suspend` is noticed within this long, instead of costing a round trip per job.
SUSPENSION_CHECK_EVERY_SECONDS = 1

PRELOAD = ("jobs.gif_sender", "jobs.alerts", "jobs.sweeper", "smtplib", "email.mime.multipart")
# Compiled in the parent too: Jinja caches per app, and a horse's cache dies with it.
WARM_TEMPLATES = ("email/gif_email.txt", "email/gif_email.html")


def get_app() -> Flask:
    """The app for this process, built on first use from the environment."""
    global _app
    if _app is None:
        from app import create_app

        _app = create_app()
    return _app


class AppJob(Job):
    """Runs the job inside an app context: the caller's when there is one (tests, `now`
    delivery), else this process's app."""

    def perform(self):
        if has_app_context():
            return super().perform()
        with get_app().app_context():
            return super().perform()


def prepare_app() -> Flask:
    """Build the app, import the job modules and compile the email templates, once."""
    app = get_app()
    for module in PRELOAD:
        importlib.import_module(module)
    for template in WARM_TEMPLATES:
        app.jinja_env.get_template(template)
    # Move what exists now out of the GC's reach, so collections in forked children
    # do not write to (and so copy) every page shared with their parent.
    gc.freeze()
    return app


class AppSimpleWorker(SimpleWorker):
    """Runs each job in this process: no fork, so a job costs its own CPU and little
    more. A job that kills the process (SIGKILL, out of memory, a segfault) takes only
    this worker down; jobs/pool.py fails that job at once and starts a fresh worker.

    A long-lived process must not grow without bound: it retires after
    WORKER_MAX_JOBS jobs, or after any job that leaves it above WORKER_MAX_MEMORY_MB,
    and the pool replaces it.
    """

    # Our own line (jobs/gif_sender.py) says how each job went, its id and duration:
    # RQ's "result is kept for 500 seconds" after every job would only repeat the TTL.
    log_result_lifespan = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        config = prepare_app().config
        self.max_jobs = config["WORKER_MAX_JOBS"]
        self.max_memory_bytes = config["WORKER_MAX_MEMORY_MB"] * 1024 * 1024
        self.jobs_done = 0
        self._process = psutil.Process()  # made once: building one reads several /proc files
        self._next_heartbeat = self._next_suspension_check = 0.0

    # RQ's bookkeeping costs about 24 Redis round trips per job, each costing CPU on both
    # ends; the overrides below cut the ones that repeat what was just written.

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

    def set_state(self, state: str, pipeline=None) -> None:
        """RQ sets `idle` after each job and again before taking the next one."""
        if pipeline is None and state == self._state:
            return
        super().set_state(state, pipeline)

    def check_for_suspension(self, burst: bool) -> None:
        if time.monotonic() < self._next_suspension_check:
            return
        super().check_for_suspension(burst)
        self._next_suspension_check = time.monotonic() + SUSPENSION_CHECK_EVERY_SECONDS

    def handle_execution_ended(self, job: Job, queue, heartbeat_ttl: int) -> None:
        """RQ's job heartbeat here keeps the job registered while a success callback
        runs; our jobs have none, so only the end time is kept."""
        if job.success_callback is not None:
            return super().handle_execution_ended(job, queue, heartbeat_ttl)
        job.ended_at = now()

    def execute_job(self, job: Job, queue) -> None:
        super().execute_job(job, queue)
        self.jobs_done += 1
        reason = self.reason_to_retire()
        if reason:
            self.log.info("Worker %s: retiring after this job: %s", self.name, reason)
            self._stop_requested = True  # RQ's loop stops before taking another job

    def reason_to_retire(self) -> str | None:
        if self.jobs_done >= self.max_jobs:
            return f"{self.jobs_done} jobs done"
        rss = self._process.memory_info().rss
        if rss > self.max_memory_bytes:
            return f"using {rss // 2**20} MB, over {self.max_memory_bytes // 2**20} MB"
        return None


class AppWorker(Worker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
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
