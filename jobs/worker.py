"""How a worker gives jobs the Flask app they need (Flask-Mail reads its config).

Start a worker with rq's own CLI, as the Procfile does:

    rq worker --worker-class jobs.worker.AppWorker --job-class jobs.worker.AppJob \
        --with-scheduler mailers default maintenance

A stock ``rq worker`` forks a child per job; if each child built the app and
imported Flask-Mail anew, a worker would send a few emails a second. AppWorker
builds the app once in the parent, so every forked child inherits it ready-made.
"""

import contextlib
import gc
import importlib
import os

from flask import Flask, has_app_context
from rq import Worker
from rq.job import Job

_app: Flask | None = None

# Imported in the parent too, so children do not import them per job.
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


class AppWorker(Worker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        app = get_app()
        for module in PRELOAD:
            importlib.import_module(module)
        for template in WARM_TEMPLATES:
            app.jinja_env.get_template(template)
        # Move what exists now out of the GC's reach, so collections in the horses
        # do not write to (and so copy) every page shared with this parent.
        gc.freeze()

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
