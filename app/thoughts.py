"""The one path by which a thought enters Work-It, shared by the form and the API."""

import logging

from flask import current_app

from app import submissions
from app.extensions import get_redis
from app.submissions import Submission
from jobs import failures
from jobs.gif_sender import enqueue_gif_email, send_gif_email

log = logging.getLogger(__name__)


def accept(email: str, thought: str) -> Submission:
    """Store the submission and enqueue its job in one transaction: both or neither.

    With WORKIT_DELIVERY=now the job runs right here instead, as in lesson step 1
    (the slow page). If that run fails, the job is enqueued so nothing is lost.
    """
    later = current_app.config["WORKIT_DELIVERY"] != "now"
    with get_redis().pipeline() as pipe:
        pipe.multi()  # explicit MULTI: RQ then queues its writes inside our transaction
        submission = submissions.create(pipe, email, thought)
        if later:
            enqueue_gif_email(submission.id, pipeline=pipe)
        pipe.execute()
    if not later:
        _deliver_now(submission.id)
    return submission


def _deliver_now(submission_id: str) -> None:
    try:
        send_gif_email(submission_id)
    except Exception as exc:
        log.exception("submission_id=%s delivery=now failed; enqueued to retry", submission_id)
        redis = get_redis()
        submissions.mark_attempt_failed(redis, submission_id, failures.describe(exc), final=False)
        enqueue_gif_email(submission_id)
