"""send_gif_email: the lesson's GifSenderJob, written to run at least once, safely.

Queues deliver at least once: a job may be enqueued twice, retried after a
failure, or picked up again after a worker died. So the job is idempotent: it
takes a per-submission Redis lock (two runs never overlap) and does nothing if
the submission's ``sent`` flag is already set. However often it runs, one email.

The job comes first, top to bottom as the lesson's steps; then its policy (queue,
timeout, retries), declared here beside it and applied by ``enqueue_gif_email``;
then what RQ calls when a run fails.
"""

import logging
import math
import random
import time
from contextlib import suppress
from datetime import datetime
from functools import partial

from flask import current_app
from redis.exceptions import LockError, RedisError
from redis.lock import Lock
from rq import Callback, Queue, Retry, get_current_job
from rq.job import Job

from app import giphy, keys, mailer, submissions
from app.extensions import DeliveryUnknown, get_redis
from app.ops import replication
from jobs import MAILERS, alerts, failures, outcomes
from jobs.runtime import shutdown
from jobs.worker import AppJob

log = logging.getLogger(__name__)

QUEUE = MAILERS
# Beyond the simulated delay and the Giphy and SMTP timeouts, this much slack.
JOB_TIMEOUT_MARGIN_SECONDS = 5
# The lock outlives the job's timeout, so a run that is still alive always holds it.
LOCK_TIMEOUT_MARGIN_SECONDS = 5
# A duplicate waits this long for the run holding the lock, then gives up; RQ retries it.
LOCK_WAIT_SECONDS = 5


# After the server accepted the email, the `sent` write (and its wait for replicas) is
# retried this long (a Redis restart, a failover) before giving up: a job that fails
# there would send it again.
SENT_WRITE_RETRY_SECONDS = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2)


class SubmissionBusy(Exception):
    """Another run holds this submission's lock; RQ will retry this one later."""


class LockLost(Exception):
    """This run's lock expired before it could send: another run may hold it now.
    Refuse to send; the retry finds the email sent, or sends it under a lock of its own."""


@shutdown.handed_back_on_stop  # a stopping worker may put it back until it sends
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
        # With replicas, a replica must hold the lock too: one promoted without it
        # would let a second run take it and send while this one sends.
        replication.wait_for_replicas(redis, current_app.config)
        submission = submissions.begin_attempt(redis, submission_id)  # 2. read the flag
        if submission is None:
            log.warning("submission_id=%s outcome=missing", submission_id)
            return "missing"
        if submissions.is_closed(submission):
            log.info("submission_id=%s outcome=already-%s", submission_id, submission.status)
            return f"already {submission.status}"
        return _send(redis, submission, lock)  # 3. send, 4. record `sent`
    finally:
        with suppress(LockError):  # 5. release the lock (unless it expired: not ours now)
            lock.release()


def _send(redis, submission: submissions.Submission, lock: Lock) -> str:
    started = time.monotonic()
    gif = giphy.find_gif(submission.thought)
    try:
        mailer.send_email(submission, gif, before_send=partial(_still_holding, lock))
    except DeliveryUnknown as exc:
        return _unconfirmed(redis, submission.id, exc, _context(submission.id, started))
    _record_sent(redis, submission.id, gif)
    log.info(
        "%s attempt=%d outcome=sent gif=%s",
        _context(submission.id, started),
        submission.attempts,
        gif.source,
    )
    return "sent"


def _still_holding(lock: Lock) -> None:
    """Renew the lock to its full timeout right before sending, or refuse to send.
    From here on, a stopping worker waits for this run rather than hand it back."""
    try:
        lock.reacquire()
    except LockError as exc:
        raise LockLost(str(exc)) from exc
    shutdown.sending()


def _record_sent(redis, submission_id: str, gif: giphy.Gif) -> None:
    """The server has the email now: the `sent` flag must land, and reach a replica so
    that a failover keeps it (app/ops/replication.py), or a retry sends it again. Redis may
    be restarting or failing over, so try a few times before giving up."""
    counted = False
    for pause in (*SENT_WRITE_RETRY_SECONDS, None):
        try:
            with redis.pipeline() as pipe:
                submissions.mark_sent(pipe, submission_id, gif.url, gif.source, gif.note)
                if not counted:  # for /metrics, once (a retry may follow a write that went in)
                    outcomes.count(pipe, get_current_job(), outcomes.SENT)
                pipe.execute()
            counted = True
            replication.wait_for_replicas(redis, current_app.config)
            return
        except RedisError as exc:
            if pause is None:
                raise
            log.warning("submission_id=%s sent, but not yet recorded (%s)", submission_id, exc)
            time.sleep(pause)


def _unconfirmed(redis, submission_id: str, exc: DeliveryUnknown, context: str) -> str:
    """Not a failure to retry (that could send twice) but one for a person to check."""
    error = failures.describe(exc)
    submissions.mark_unconfirmed(redis, submission_id, error)
    log.warning("%s outcome=unconfirmed error=%r", context, error)
    job = get_current_job()
    flag_id = job.id if job else f"now-{submission_id}"
    alerts.raise_red_flag(redis, flag_id, submission_id, error, what="unconfirmed")
    return "unconfirmed"


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
        + sum(SENT_WRITE_RETRY_SECONDS)
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
        "on_success": Callback(outcomes.on_send_success) if config["METRICS_ENABLED"] else None,
        "on_failure": Callback(on_send_failure),
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


def on_send_failure(job: Job, connection, exc_type, exc_value, traceback) -> None:
    """RQ calls this after every failed run, before it decides on a retry; runs that
    died with their worker come here too (as AbandonedJobError), when RQ cleans up.
    It handles the failure, then counts the run's outcome for /metrics."""
    outcomes.record(connection, job, _handle_failure(job, connection, exc_value))


def _handle_failure(job: Job, connection, exc_value) -> str:
    """The failure callback's work; returns the run's outcome (jobs/outcomes.py).

    It records the error on the submission (unless the submission is closed: sent,
    unconfirmed or cancelled, see app/submissions.py), stops retries of permanent failures
    (RQ reads ``retries_left`` right after this returns), and raises the red flag
    when the job is dead: no retry left. A configuration error (the mail server
    refuses our login or our sender) is flagged once for its cause instead, however
    many jobs it fails.
    """
    submission_id = job.args[0]
    if isinstance(exc_value, shutdown.HandedBack):
        # Not a failed attempt: the worker was stopping before this run sent anything,
        # and puts the job back on its queue (jobs/runtime/shutdown.py). The attempt it began
        # does not count.
        submissions.hand_back(connection, submission_id)
        log.info("job_id=%s submission_id=%s outcome=handed-back", job.id, submission_id)
        return outcomes.HANDED_BACK
    submission = submissions.load(connection, submission_id)
    if submission is None or submissions.is_closed(submission):
        job.retries_left = 0  # nothing left to do: a retry would only return at once
        return outcomes.NOTHING_TO_DO
    if isinstance(exc_value, SubmissionBusy):
        # Not a failed attempt: a live run holds the lock and decides how this one ends
        # (and if it died, its own failure or the sweeper retries it). RQ retries this
        # run later, which then finds the email sent or takes the lock itself.
        log.info("job_id=%s submission_id=%s outcome=busy", job.id, submission_id)
        return outcomes.BUSY
    kind = failures.kind(exc_value)
    if kind == failures.PERMANENT:
        job.retries_left = 0
    final = not job.should_retry
    error = failures.describe(exc_value)
    if not submissions.mark_attempt_failed(connection, submission_id, error, final):
        job.retries_left = 0  # another run sent it meanwhile: nothing to retry, no flag
        return outcomes.ALREADY_SENT
    log.warning(
        "job_id=%s submission_id=%s queue=%s outcome=failed final=%s error=%r",
        job.id,
        submission_id,
        QUEUE,
        final,
        error,
    )
    if kind == failures.CONFIGURATION:
        alerts.raise_setup_flag(connection, failures.cause(exc_value), submission_id, error)
    elif final:
        alerts.raise_red_flag(
            connection, job.id, submission_id, error, cause=failures.cause(exc_value)
        )
    return outcomes.DEAD if final else outcomes.FAILED_RETRYING
