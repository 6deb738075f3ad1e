"""send_gif_email: the lesson's GifSenderJob, written to run at least once, safely.

Queues deliver at least once: a job may be enqueued twice, retried after a
failure, or picked up again after a worker died. So the job is idempotent: it
takes a per-submission Redis lock (two runs never overlap) and does nothing if
the submission's ``sent`` flag is already set. However often it runs, one email.

Its policy (queue, timeout, retries) is declared here, beside it, and applied by
``enqueue_gif_email``.
"""

import logging
import math
import random
import time
from contextlib import suppress

from flask import current_app
from redis.exceptions import LockError
from rq import Queue, Retry, get_current_job
from rq.job import Job

from app import giphy, mailer, submissions
from app.extensions import get_redis
from jobs import MAILERS
from jobs.worker import AppJob

log = logging.getLogger(__name__)

QUEUE = MAILERS
# Beyond the simulated delay and the Giphy and SMTP timeouts, this much slack.
JOB_TIMEOUT_MARGIN_SECONDS = 10
# The lock outlives the job's timeout, so a run that is still alive always holds it.
LOCK_TIMEOUT_MARGIN_SECONDS = 30
# A duplicate waits this long for the run holding the lock, then fails and retries later.
LOCK_WAIT_SECONDS = 15


class SubmissionBusy(Exception):
    """Another run holds this submission's lock; RQ will retry this one later."""


def job_timeout_seconds(config) -> int:
    """Aggressive, but above the worst case of one honest run."""
    worst = (
        config["MAILER_DELAY_SECONDS"]
        + giphy.CONNECT_TIMEOUT_SECONDS
        + config["GIPHY_TIMEOUT_SECONDS"]
        + config["MAIL_TIMEOUT_SECONDS"]
    )
    return math.ceil(worst) + JOB_TIMEOUT_MARGIN_SECONDS


def retry_intervals_seconds(base: float, count: int, rng=random) -> list[int]:
    """Exponential backoff with +/-25% jitter, so failed jobs do not retry in lockstep.

    RQ's Retry takes the intervals as a list and adds no jitter of its own.
    """
    return [round(base * 2**n * rng.uniform(0.75, 1.25)) for n in range(count)]


def retry_policy(config) -> Retry:
    intervals = retry_intervals_seconds(config["RETRY_BASE_SECONDS"], config["RETRY_MAX"])
    return Retry(max=config["RETRY_MAX"], interval=intervals)


def enqueue_gif_email(submission_id: str, *, pipeline=None) -> Job:
    """Enqueue the job with its policy; inside ``pipeline`` it commits with the caller's writes."""
    config = current_app.config
    queue = Queue(QUEUE, connection=get_redis(), job_class=AppJob)
    job = queue.enqueue_call(
        send_gif_email,
        args=(submission_id,),
        timeout=job_timeout_seconds(config),
        retry=retry_policy(config),
        description=f"send_gif_email({submission_id!r})",
        pipeline=pipeline,
    )
    submissions.update(pipeline or get_redis(), submission_id, job_id=job.id)
    return job


def send_gif_email(submission_id: str) -> str:
    """Send the GIF email for one submission, once. Returns what it did, for the job result."""
    redis = get_redis()
    lock_timeout = job_timeout_seconds(current_app.config) + LOCK_TIMEOUT_MARGIN_SECONDS
    lock = redis.lock(
        submissions.lock_key(submission_id),
        timeout=lock_timeout,
        blocking_timeout=LOCK_WAIT_SECONDS,
    )
    if not lock.acquire():
        raise SubmissionBusy(submission_id)
    try:
        return _send_once(redis, submission_id)
    finally:
        with suppress(LockError):  # expired already: nothing of ours to release
            lock.release()


def _send_once(redis, submission_id: str) -> str:
    submission = submissions.load(redis, submission_id)
    if submission is None:
        log.warning("submission_id=%s outcome=missing", submission_id)
        return "missing"
    if submission.sent:
        log.info("submission_id=%s outcome=already-sent", submission_id)
        return "already sent"
    attempt = submissions.start_attempt(redis, submission_id)
    started = time.monotonic()
    try:
        gif = giphy.find_gif(submission.thought)
        mailer.send_randomness_email(submission, gif)
    except Exception as exc:
        _record_failure(redis, submission_id, attempt, exc, started)
        raise
    submissions.mark_sent(redis, submission_id, gif.url, gif.source, gif.note)
    log.info(
        "%s attempt=%d outcome=sent gif=%s", _context(submission_id, started), attempt, gif.source
    )
    return "sent"


def _record_failure(redis, submission_id: str, attempt: int, exc: Exception, started) -> None:
    job = get_current_job()
    final = job is not None and not job.retries_left
    error = f"{type(exc).__name__}: {exc}"[:500]
    submissions.mark_attempt_failed(redis, submission_id, error, final)
    log.warning(
        "%s attempt=%d outcome=failed final=%s error=%r",
        _context(submission_id, started),
        attempt,
        final,
        error,
    )


def _context(submission_id: str, started: float) -> str:
    """The key=value fields every job log line starts with."""
    job = get_current_job()
    job_id = job.id if job else "-"  # "-": run inside the request (WORKIT_DELIVERY=now)
    duration_ms = round((time.monotonic() - started) * 1000)
    return f"job_id={job_id} submission_id={submission_id} queue={QUEUE} duration_ms={duration_ms}"
