"""requeue_stuck_submissions: the safety net under "nothing accepted is lost".

A worker killed in the middle of a job (SIGKILL, a crash, a lost machine) leaves
its submission `sending` and its job in RQ's started registry; RQ notices only at
its next maintenance pass (every 10 minutes by default). This sweep, run every
minute by the cron scheduler (jobs/runtime/cron_scheduler.py, jobs/cron.py) and safe to run by hand
(`flask --app app requeue-stuck`), finds submissions still `queued` or `sending`
well past the time any honest run would take, with no job waiting to run for
them, and enqueues them again. Safe because send_gif_email is idempotent.

It also keeps two decisions that are a person's to make: a job cancelled or
deleted (from the dashboard, say) makes its submission `cancelled`, never
enqueued again; and a submission found stuck MAX_REQUEUES times is dead, with
its red flag, rather than enqueued forever.
"""

import logging

import click
from flask import current_app
from flask.cli import with_appcontext
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import DeferredJobRegistry, ScheduledJobRegistry

from app import keys, submissions
from app.extensions import get_redis
from jobs import MAINTENANCE, alerts
from jobs.gif_sender import enqueue_gif_email, lock_timeout_seconds

log = logging.getLogger(__name__)

QUEUE = MAINTENANCE
INTERVAL_SECONDS = 60
# Past the lock's timeout, a dead run's lock has expired, so the new run can take it.
STUCK_MARGIN_SECONDS = 5
# A submission stuck this many times has a job that kills its worker: give up.
MAX_REQUEUES = 3


def stuck_after_seconds(config) -> int:
    return lock_timeout_seconds(config) + STUCK_MARGIN_SECONDS


def requeue_stuck_submissions() -> int:
    """Enqueue again every stuck submission; returns how many."""
    redis = get_redis()
    stuck_after = stuck_after_seconds(current_app.config)
    requeued = 0
    for raw_id in redis.zrange(keys.PENDING, 0, -1):
        submission = submissions.load(redis, raw_id.decode())
        if submission is None or submissions.is_final(submission):
            redis.zrem(keys.PENDING, raw_id)  # not pending any more
        else:
            requeued += _sweep(redis, submission, stuck_after) == "requeued"
    return requeued


def _sweep(redis, submission: submissions.Submission, stuck_after: int) -> str:
    """What to do with one pending submission; returns what was done."""
    job = _job(redis, submission.job_id)
    status = job.get_status(refresh=False) if job else None
    if submission.job_id and status in {None, JobStatus.CANCELED}:
        why = "deleted" if status is None else "cancelled"
        submissions.mark_cancelled(redis, submission.id, f"its job {submission.job_id} was {why}")
        return "cancelled"
    if submissions.age_seconds(submission.updated_at) < stuck_after or _waiting(job, status):
        return "left alone"
    if submission.requeues >= MAX_REQUEUES:
        _give_up(redis, submission)
        return "dead"
    _requeue(redis, submission)
    log.warning(
        "submission_id=%s outcome=requeued-stuck old_job_id=%s",
        submission.id,
        submission.job_id,
    )
    return "requeued"


def _job(redis, job_id: str) -> Job | None:
    """None when there is no such job (never enqueued: WORKIT_DELIVERY=now; or deleted)."""
    if not job_id:
        return None
    try:
        return Job.fetch(job_id, connection=redis)
    except NoSuchJobError:
        return None


def _waiting(job: Job | None, status: JobStatus | None) -> bool:
    """Really waiting to run: its status, and a place where something will find it.
    A worker listening on several queues takes a job off its queue (BLPOP) before it
    marks it started: if it dies in between, the job still says `queued` but sits in
    no queue. And RQ's retry writes `scheduled` at once but the schedule itself in a
    transaction still to come: a pool killed in between leaves the job `scheduled` in
    no registry. Nothing else would ever run either."""
    if status == JobStatus.QUEUED:
        return job.get_position() is not None
    if status == JobStatus.SCHEDULED:
        return job.id in ScheduledJobRegistry(job.origin, connection=job.connection)
    if status == JobStatus.DEFERRED:
        return job.id in DeferredJobRegistry(job.origin, connection=job.connection)
    return False


def _requeue(redis, submission: submissions.Submission) -> None:
    """Enqueue it again, with the journey's event in the same transaction (as the web does)."""
    detail = f"no job of its own was waiting (old job {submission.job_id or '-'})"
    with redis.pipeline() as pipe:
        pipe.multi()  # explicit MULTI: RQ then queues its writes inside our transaction
        submissions.record_event(pipe, submission.id, submissions.Event.REQUEUED, detail)
        pipe.hincrby(keys.submission(submission.id), "requeues", 1)
        enqueue_gif_email(submission.id, pipeline=pipe)
        pipe.execute()


def _give_up(redis, submission: submissions.Submission) -> None:
    error = f"stuck {MAX_REQUEUES + 1} times: its job keeps dying with its worker"
    if submissions.mark_attempt_failed(redis, submission.id, error, final=True):
        flag_id = submission.job_id or f"sweep-{submission.id}"
        alerts.raise_red_flag(redis, flag_id, submission.id, error)


@click.command("requeue-stuck")
@with_appcontext
def requeue_stuck_command() -> None:
    """Run the stuck-submission sweep now (it also runs every minute under the cron scheduler)."""
    click.echo(f"requeued {requeue_stuck_submissions()} stuck submission(s)")
