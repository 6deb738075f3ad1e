"""requeue_stuck_submissions: the safety net under "nothing accepted is lost".

A worker killed in the middle of a job (SIGKILL, a crash, a lost machine) leaves
its submission `sending` and its job in RQ's started registry; RQ notices only at
its next maintenance pass (every 10 minutes by default). This sweep, run every
minute by `rq cron` (jobs/cron.py) and safe to run by hand
(`flask --app app requeue-stuck`), finds submissions still `queued` or `sending`
well past the time any honest run would take, with no job waiting to run for
them, and enqueues them again. Safe because send_gif_email is idempotent.
"""

import logging

from flask import current_app
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from app import submissions
from app.extensions import get_redis
from jobs import MAINTENANCE
from jobs.gif_sender import enqueue_gif_email, lock_timeout_seconds

log = logging.getLogger(__name__)

QUEUE = MAINTENANCE
INTERVAL_SECONDS = 60
# Past the lock's timeout, a dead run's lock has expired, so the new run can take it.
STUCK_MARGIN_SECONDS = 5
WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
# Nothing left to do for these: never enqueue them again.
DONE = {"failed", "unconfirmed"}


def stuck_after_seconds(config) -> int:
    return lock_timeout_seconds(config) + STUCK_MARGIN_SECONDS


def requeue_stuck_submissions() -> int:
    """Enqueue again every stuck submission; returns how many."""
    redis = get_redis()
    stuck_after = stuck_after_seconds(current_app.config)
    requeued = 0
    for raw_id in redis.zrange(submissions.pending_key(), 0, -1):
        submission = submissions.load(redis, raw_id.decode())
        if submission is None or submission.sent or submission.status in DONE:
            redis.zrem(submissions.pending_key(), raw_id)  # not pending any more
        elif _is_stuck(redis, submission, stuck_after):
            _requeue(redis, submission)
            log.warning(
                "submission_id=%s outcome=requeued-stuck old_job_id=%s",
                submission.id,
                submission.job_id,
            )
            requeued += 1
    return requeued


def _requeue(redis, submission: submissions.Submission) -> None:
    """Enqueue it again, with the journey's event in the same transaction (as the web does)."""
    detail = f"no job of its own was waiting (old job {submission.job_id or '-'})"
    with redis.pipeline() as pipe:
        pipe.multi()  # explicit MULTI: RQ then queues its writes inside our transaction
        submissions.record_event(pipe, submission.id, "requeued by the sweeper", detail)
        enqueue_gif_email(submission.id, pipeline=pipe)
        pipe.execute()


def _is_stuck(redis, submission: submissions.Submission, stuck_after: int) -> bool:
    """Quiet for too long, and no job of its own waiting in a queue or for a retry."""
    if submissions.age_seconds(submission.updated_at) < stuck_after:
        return False
    try:
        status = Job.fetch(submission.job_id, connection=redis).get_status()
    except NoSuchJobError:
        return True
    # A `started` job older than its own timeout is a run whose worker died.
    return status not in WAITING
