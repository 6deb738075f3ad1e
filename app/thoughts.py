"""The one path by which a thought enters Work-It, shared by the form and the API."""

from datetime import datetime

from flask import current_app

from app import background, submissions
from app.extensions import get_redis
from app.ops import bookkeeping
from app.submissions import Submission

IN_THE_REQUEST = "WORKIT_DELIVERY=now: the web request runs the job itself, slow mailer included"
UNREPLICATED_REASON = "not stored safely: no replica acknowledged it in time, so it is not sent"


def accept(email: str, thought: str, send_at: datetime | None = None) -> Submission:
    """Store the submission and enqueue its job in one transaction: both or neither.

    With ``send_at`` the job is scheduled for then instead. With WORKIT_DELIVERY=now
    the job runs right here, as in lesson step 1 (the slow page), and the submission
    comes back as that run left it. If the run fails, the job is enqueued so nothing
    is lost.
    """
    now = current_app.config["WORKIT_DELIVERY"] == "now" and send_at is None
    delivery = "now" if now else "later"
    redis = get_redis()
    with redis.pipeline() as pipe:
        pipe.multi()  # explicit MULTI: RQ then queues its writes inside our transaction
        submission = submissions.create(pipe, email, thought, delivery, send_at)
        if delivery == "later":
            background.enqueue_gif_email(submission.id, pipeline=pipe, at=send_at)
        else:
            submissions.record_event(
                pipe, submission.id, submissions.Event.DELIVERING_NOW, IN_THE_REQUEST
            )
        _commit(redis, pipe, submission, counted_as="scheduled" if send_at else delivery)
    if delivery == "later":
        return submission
    background.deliver_in_request(submission.id)
    return submissions.load(redis, submission.id) or submission


def _commit(redis, pipe, submission: Submission, counted_as: str) -> None:
    """A failover must not lose an accepted thought: answer only once a replica has it
    (app/ops/bookkeeping.py). If none has it in time, cancel it (so its job, if it runs,
    sends nothing) and let the error answer 503: the person submits again."""
    try:
        bookkeeping.commit_accepted(redis, pipe, counted_as)
    except bookkeeping.NotReplicated:
        submissions.mark_cancelled(redis, submission.id, UNREPLICATED_REASON)
        raise
