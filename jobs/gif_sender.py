"""send_gif_email: the lesson's GifSenderJob, written to run at least once, safely.

Queues deliver at least once: a job may be enqueued twice, retried after a
failure, or picked up again after a worker died. So the job is idempotent: it
takes a per-submission Redis lock (two runs never overlap) and does nothing if
the submission's ``sent`` flag is already set. However often it runs, one email.

The job comes first, top to bottom as the lesson's steps; then its policy (queue,
timeout, retries), declared here beside it and applied by ``enqueue_gif_email``.
What RQ calls when a run fails is in jobs/failures.py.
"""

import logging
import math
import random
import time
from contextlib import suppress
from datetime import datetime
from functools import partial

from flask import current_app
from redis.exceptions import LockError
from redis.lock import Lock
from rq import Callback, Queue, Retry, get_current_job
from rq.job import Job

from app import giphy, keys, mailer, submissions
from app.extensions import DeliveryUnknown, get_redis
from app.ops import bookkeeping
from jobs import MAILERS, alerts, failures
from jobs.failures import LockLost, SubmissionBusy
from jobs.outcomes import Outcome, on_send_success
from jobs.worker import AppJob

log = logging.getLogger(__name__)

QUEUE = MAILERS
# Beyond the simulated delay and the Giphy and SMTP timeouts, this much slack.
JOB_TIMEOUT_MARGIN_SECONDS = 5
# The lock outlives the job's timeout, so a run that is still alive always holds it.
LOCK_TIMEOUT_MARGIN_SECONDS = 5
# A duplicate waits this long for the run holding the lock, then gives up; RQ retries it.
LOCK_WAIT_SECONDS = 5


def send_gif_email(submission_id: str) -> str:
    """Send the GIF email for one submission, once. Returns what it did, for the job result.

    The lesson's steps, in order: take the lock, read the flag, send, record `sent`,
    release the lock.
    """
    redis = get_redis()
    lock = redis.lock(
        keys.lock(submission_id),
        timeout=lock_timeout_seconds(current_app.config),
        blocking_timeout=LOCK_WAIT_SECONDS,
    )
    if not lock.acquire():  # 1. take the lock: two runs never overlap
        raise SubmissionBusy(submission_id)
    try:
        bookkeeping.keep_lock(redis)  # with replicas: until one has it
        submission = submissions.begin_attempt(redis, submission_id)  # 2. read the flag
        if submission is None:
            log.warning("submission_id=%s outcome=%s (none)", submission_id, Outcome.NOTHING_TO_DO)
            return Outcome.NOTHING_TO_DO
        if submissions.is_closed(submission):
            done = Outcome.ALREADY_SENT if submission.sent else Outcome.NOTHING_TO_DO
            log.info("submission_id=%s outcome=%s (%s)", submission_id, done, submission.status)
            return done
        return _send(redis, submission, lock)  # 3. send, 4. record `sent`
    finally:
        with suppress(LockError):  # 5. release the lock (unless it expired: not ours now)
            lock.release()


def _send(redis, submission: submissions.Submission, lock: Lock) -> Outcome:
    started = time.monotonic()
    gif = giphy.find_gif(submission.thought)
    try:
        mailer.send_email(submission, gif, before_send=partial(_still_holding, lock))
    except DeliveryUnknown as exc:
        return _unconfirmed(redis, submission.id, exc, _context(submission.id, started))
    record = partial(submissions.mark_sent, submission_id=submission.id, gif=gif)
    bookkeeping.commit_sent(redis, record, Outcome.SENT, submission.id)
    log.info(
        "%s attempt=%d outcome=%s gif=%s",
        _context(submission.id, started),
        submission.attempts,
        Outcome.SENT,
        gif.source,
    )
    return Outcome.SENT


def _still_holding(lock: Lock) -> None:
    """Renew the lock to its full timeout right before sending, or refuse to send."""
    try:
        lock.reacquire()
    except LockError as exc:
        raise LockLost(str(exc)) from exc


def _unconfirmed(redis, submission_id: str, exc: DeliveryUnknown, context: str) -> Outcome:
    """Not a failure to retry (that could send twice) but one for a person to check."""
    error = failures.describe(exc)
    submissions.mark_unconfirmed(redis, submission_id, error)
    log.warning("%s outcome=%s error=%r", context, Outcome.UNCONFIRMED, error)
    job = get_current_job()
    flag_id = job.id if job else f"now-{submission_id}"
    alerts.raise_red_flag(redis, flag_id, submission_id, error, what="unconfirmed")
    return Outcome.UNCONFIRMED


def _context(submission_id: str, started: float) -> str:
    """The key=value fields every job log line starts with."""
    job = get_current_job()
    job_id = job.id if job else "-"  # "-": run inside the request (WORKIT_DELIVERY=now)
    duration_ms = round((time.monotonic() - started) * 1000)
    return f"job_id={job_id} submission_id={submission_id} queue={QUEUE} duration_ms={duration_ms}"


def job_timeout_seconds(config) -> int:
    """Aggressive, but above the worst case of one honest run (a wait for the lock,
    then the slow mailer, Giphy and SMTP each taking their full timeout)."""
    worst = (
        LOCK_WAIT_SECONDS
        + config["MAILER_DELAY_SECONDS"]
        + giphy.CONNECT_TIMEOUT_SECONDS
        + config["GIPHY_TIMEOUT_SECONDS"]
        + config["MAIL_TIMEOUT_SECONDS"]  # the whole SMTP session (app/extensions.py)
        + sum(bookkeeping.SENT_WRITE_RETRY_SECONDS)
    )
    return math.ceil(worst) + JOB_TIMEOUT_MARGIN_SECONDS


def retry_intervals_seconds(base: float, count: int, rng=random) -> list[int]:
    """Exponential backoff with +/-25% jitter, so failed jobs do not retry in lockstep.

    RQ's Retry takes the intervals as a list and adds no jitter of its own.
    """
    return [round(base * 2**n * rng.uniform(0.75, 1.25)) for n in range(count)]


def lock_timeout_seconds(config) -> int:
    return job_timeout_seconds(config) + LOCK_TIMEOUT_MARGIN_SECONDS


def retry_policy(config) -> Retry | None:
    """None for RETRY_MAX=0 (the first failure is final): RQ's Retry refuses max=0."""
    if config["RETRY_MAX"] <= 0:
        return None
    intervals = retry_intervals_seconds(config["RETRY_BASE_SECONDS"], config["RETRY_MAX"])
    return Retry(max=config["RETRY_MAX"], interval=intervals)


def enqueue_gif_email(submission_id: str, *, pipeline=None, at: datetime | None = None) -> Job:
    """Enqueue the job with its policy; inside ``pipeline`` it commits with the caller's writes.

    With ``at`` (aware), RQ keeps the job in the queue's scheduled registry until then;
    a worker's scheduler (every worker runs one; one is active) moves it onto the
    queue within a second of its time.
    """
    config = current_app.config
    queue = Queue(QUEUE, connection=get_redis(), job_class=AppJob)
    policy = {
        "job_timeout": job_timeout_seconds(config),
        "retry": retry_policy(config),
        "on_success": Callback(on_send_success) if config["METRICS_ENABLED"] else None,
        "on_failure": Callback(failures.on_send_failure),
        "failure_ttl": submissions.retention_seconds(),  # RQ's default: a year
        "description": f"send_gif_email({submission_id!r})",
        "pipeline": pipeline,
    }
    if at is None:
        job = queue.enqueue(send_gif_email, submission_id, **policy)
        event, detail = submissions.Event.ENQUEUED, f"job {job.id} on queue {QUEUE}"
    else:
        job = queue.enqueue_at(at, send_gif_email, submission_id, **policy)
        due = f"{at:%Y-%m-%d %H:%M:%S} UTC"
        event, detail = submissions.Event.SCHEDULED, f"job {job.id} on queue {QUEUE}, due {due}"
    # The job id and the journey's event go with the enqueue: in the caller's
    # transaction, or else together in one round trip of their own.
    target = pipeline if pipeline is not None else get_redis().pipeline()
    submissions.update(target, submission_id, job_id=job.id)
    submissions.record_event(target, submission_id, event, detail)
    if pipeline is None:
        target.execute()
    return job


def deliver_in_request(submission_id: str) -> None:
    """WORKIT_DELIVERY=now (lesson step 1): the web request runs the job itself. If it
    fails, the attempt is recorded and the job enqueued, so nothing is lost."""
    try:
        send_gif_email(submission_id)
    except Exception as exc:
        log.exception("submission_id=%s delivery=now failed; enqueued to retry", submission_id)
        redis = get_redis()
        submissions.mark_attempt_failed(redis, submission_id, failures.describe(exc), final=False)
        enqueue_gif_email(submission_id)
