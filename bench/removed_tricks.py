"""Speed tricks taken out of the lesson's code, or tried and never shipped (NoResults),
kept here only so `make bench` can measure them against the plain path
(bench/tricks.py). Nothing in app/ or jobs/ imports this; each function below
installs one trick, by patching, into the pool's parent process before it forks
its workers.
"""

import gc
from email.utils import parseaddr
from functools import cache, partial, wraps

from redis.lock import Lock
from rq import job as rq_job
from rq.worker.base import BaseWorker

import jobs.runtime.pool
from app import mailer, submissions
from jobs import gif_sender
from jobs.runtime import tuning

# RQ worker overrides, put by name into tuning.TRICKS, so that
# WORKER_TUNING=heartbeat,no-results (say) runs the tuned worker with one more of them.


class NoResults(BaseWorker):
    def __init__(self, *args, **kwargs):
        """A finished job keeps no result and leaves no hash behind (RQ's public
        ``default_result_ttl=0``). It saves no commands: RQ then deletes the job and
        all that hangs on it. Not shipped either way: the dashboard would list no
        finished jobs, and the sweeper reads a pending submission whose job is gone
        as cancelled (jobs/sweeper.py)."""
        super().__init__(*args, **{**kwargs, "default_result_ttl": 0})


def no_persist() -> None:
    """RQ's Job.perform first takes any expiry off the job's hash (PERSIST, a round trip
    of its own); ours never have one while queued."""

    def perform(self):
        rq_job._job_stack.push(self)
        try:
            self._result = self._execute()
        finally:
            assert self is rq_job._job_stack.pop()
        return self._result

    rq_job.Job.perform = perform


def _worker_trick(name: str, mixin: type) -> None:
    tuning.TRICKS[name] = mixin


@cache
def _pair(address: str) -> tuple[str, str]:
    return parseaddr(address)


def address_pairs() -> None:
    """Sender and recipients as (name, address) pairs: Flask-Mail parses no string."""
    build = mailer.build_message

    @wraps(build)
    def build_with_pairs(submission, gif):
        message = build(submission, gif)
        message.sender = _pair(message.sender)
        message.recipients = [("", address) for address in message.recipients]
        return message

    mailer.build_message = build_with_pairs


def pipelined_release() -> None:
    """`sent` and the lock's release in one transaction: one round trip fewer."""

    def send(redis, submission, lock):
        gif = gif_sender.giphy.find_gif(submission.thought)
        before = partial(gif_sender._still_holding, lock)
        mailer.send_email(submission, gif, before_send=before)
        with redis.pipeline() as pipe:
            submissions.mark_sent(pipe, submission.id, gif)
            pipe.eval(Lock.LUA_RELEASE_SCRIPT, 1, lock.name, lock.local.token)
            pipe.execute()
        lock.local.token = None
        return "sent"

    gif_sender._send = send


def _after_prepare(step) -> None:
    prepare = jobs.runtime.pool.prepare_app

    def prepare_then_step():
        app = prepare()
        step(app)
        return app

    jobs.runtime.pool.prepare_app = prepare_then_step


def gc_freeze() -> None:
    _after_prepare(lambda app: gc.freeze())


def template_warmup() -> None:
    def warm(app):
        for name in ("email/gif_email.txt", "email/gif_email.html"):
            app.jinja_env.get_template(name)

    _after_prepare(warm)


PATCHES = {
    "no-results": lambda: _worker_trick("no-results", NoResults),
    "no-persist": no_persist,
    "address-pairs": address_pairs,
    "pipelined-release": pipelined_release,
    "gc-freeze": gc_freeze,
    "template-warmup": template_warmup,
}
