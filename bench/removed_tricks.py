"""Speed tricks taken out of the lesson's code, kept here only so `make bench` can
measure them against the plain path (bench/tricks.py). Nothing in app/ or jobs/
imports this; each function below installs one trick, by patching, into the pool's
parent process before it forks its workers.
"""

import gc
import secrets
import time
from email import policy
from email.utils import parseaddr
from functools import cache, partial, wraps

import flask_mail
from redis.lock import Lock
from rq.job import Job
from rq.utils import now
from rq.worker.base import BaseWorker

import jobs.runtime.pool
from app import mailer, submissions
from jobs import gif_sender
from jobs.runtime import tuning

# RQ worker overrides that once lived in jobs/runtime/tuning.py. Put back by name into
# tuning.TRICKS, so that WORKER_TUNING=heartbeat,state (say) runs the tuned worker
# with one more of them.

SUSPENSION_CHECK_EVERY_SECONDS = 1


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


def _worker_trick(name: str, mixin: type) -> None:
    tuning.TRICKS[name] = mixin


class _AsIs(policy.Compat32):
    """Write a short printable ASCII header line as it is; fold any other as
    email.policy.SMTP does (Flask-Mail's policy parses every header again)."""

    def _fold(self, name: str, value, sanitize: bool) -> str:
        if not isinstance(value, str):
            return super()._fold(name, value, sanitize)
        line = f"{name}: {value}"
        if line.isascii() and len(line) <= self.max_line_length and line.isprintable():
            return line + self.linesep
        return policy.SMTP.fold(name, value)


AS_IS = _AsIs(linesep="\r\n")


def _as_bytes(fold: bool, boundaries: bool):
    def as_bytes(self) -> bytes:
        message = self._message()
        if boundaries:  # no random boundary for the generator to check against the text
            for part in message.walk():
                if part.is_multipart():
                    part.set_boundary(f"=_{secrets.token_hex(13)}")
        if not fold:
            return message.as_bytes()
        message.policy = AS_IS
        return message.as_bytes(policy=AS_IS)

    return as_bytes


def fold_policy() -> None:
    flask_mail.Message.as_bytes = _as_bytes(fold=True, boundaries=False)


def boundaries() -> None:
    flask_mail.Message.as_bytes = _as_bytes(fold=False, boundaries=True)


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
    "state": lambda: _worker_trick("state", SkipRepeatedState),
    "suspension": lambda: _worker_trick("suspension", ThrottledSuspensionCheck),
    "execution-end": lambda: _worker_trick("execution-end", LightExecutionEnd),
    "fold-policy": fold_policy,
    "boundaries": boundaries,
    "address-pairs": address_pairs,
    "pipelined-release": pipelined_release,
    "gc-freeze": gc_freeze,
    "template-warmup": template_warmup,
}
