"""The worker's reference classes: they give jobs the Flask app they need (Flask-Mail
reads its config).

AppJob runs each job inside an app context. AppWorker is RQ's forking worker, for
``rq worker``:

    rq worker --worker-class jobs.worker.AppWorker --job-class jobs.worker.AppJob \
        --with-scheduler mailers default maintenance

A stock ``rq worker`` forks a child per job; if each child built the app and
imported Flask-Mail anew, a worker would send a few emails a second. AppWorker
builds the app once in the parent, so every forked child inherits it ready-made;
the fork still costs about 17 ms of CPU per job (docs/benchmarks.md).

What make dev runs adds to these (a pool of non-forking workers that hand a job
back when stopped, retire when they grow, and keep RQ's scheduler running):
jobs/runtime/workers.py.
"""

import contextlib
import importlib
import os

from flask import Flask, has_app_context
from rq import Worker
from rq.job import Job

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
    delivery), else this process's app."""

    def perform(self):
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


class AppWorker(Worker):
    """RQ's forking worker, with the app built once in the parent: every child it forks
    for a job inherits it ready-made."""

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
