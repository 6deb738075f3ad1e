"""The red flag: when a job is dead (retries used up, or a permanent failure),
say so once, loudly: one ERROR log line and one email to ADMIN_EMAIL.

One email per cause and hour, not per dead job: a bad input sent thirty times a
minute (or a mail server refusing every recipient) would otherwise mail the admin
thirty times a minute. Each dead job still gets its ERROR line, and sits in RQ's
failed registry.

The email is itself a job on the `default` queue with its own retries: the
failure that killed the job is often the mail server, and the alert must still
arrive once it is back. A Redis SET NX per dead job keeps it to one alert, never
one per attempt.
"""

import logging

from flask import current_app, render_template
from flask_mail import Message
from redis import Redis
from rq import Queue, Retry

from app import keys
from app.extensions import mail
from app.mailer import UTF8_QUOTED_PRINTABLE
from app.ops import bookkeeping
from app.submissions import retention_seconds
from jobs import DEFAULT
from jobs.worker import AppJob

log = logging.getLogger(__name__)

QUEUE = DEFAULT
JOB_TIMEOUT_SECONDS = 30
RETRY = Retry(max=10, interval=[10, 30, 60, 120, 300, 600, 600, 600, 600, 600])


# What went wrong -> the alert email's subject. "dead job": failed, no retry left.
# "unconfirmed": the mail server took the message but never answered; not resent.
SUBJECTS = {
    "dead job": "A GIF email failed for good",
    "unconfirmed": "A GIF email may or may not have been delivered",
    "configuration": "The mail server refuses Work-It's settings",
}
# A configuration error is reported again at most this often, however many jobs it fails.
SETUP_REMEMBER_SECONDS = 3600


def raise_red_flag(
    connection: Redis,
    job_id: str,
    submission_id: str,
    error: str,
    what: str = "dead job",
    cause: str | None = None,
) -> None:
    """Flag ``job_id`` once; with ``cause``, mail only the first of its cause each hour."""
    # A dead job's flag is remembered as long as its submission is kept.
    remember = SETUP_REMEMBER_SECONDS if what == "configuration" else retention_seconds()
    if not connection.set(keys.alert(job_id), "1", nx=True, ex=remember):
        log.info("red flag for job_id=%s raised already (%s)", job_id, what)
        return
    log.error("RED FLAG %s job_id=%s submission_id=%s error=%r", what, job_id, submission_id, error)
    bookkeeping.count_red_flag(connection, kind=what.replace(" ", "_"))
    cause_key = keys.alert(f"cause:{cause}")
    if cause and not connection.set(cause_key, "1", nx=True, ex=SETUP_REMEMBER_SECONDS):
        log.info("red flag for cause=%s mailed already this hour: no email", cause)
        return
    Queue(QUEUE, connection=connection, job_class=AppJob).enqueue_call(
        send_alert_email,
        args=(job_id, submission_id, error, what),
        timeout=JOB_TIMEOUT_SECONDS,
        retry=RETRY,
    )


def raise_setup_flag(connection: Redis, cause: str, submission_id: str, error: str) -> None:
    """One red flag per cause (a refused login, a refused sender), not one per job: the
    jobs keep retrying with backoff and go out once someone fixes the settings."""
    raise_red_flag(connection, f"setup:{cause}", submission_id, error, what="configuration")


def send_alert_email(job_id: str, submission_id: str, error: str, what: str = "dead job") -> str:
    """The alert itself: a job of its own, retried until the mail server takes it."""
    admin = current_app.config["ADMIN_EMAIL"]
    if not admin:
        log.warning("job_id=%s %s, but ADMIN_EMAIL is empty: no alert email", job_id, what)
        return "no ADMIN_EMAIL"
    context = {
        "job_id": job_id,
        "submission_id": submission_id,
        "error": error,
        "what": what,
    }
    mail.send(
        Message(
            subject=f"[Work-It] {SUBJECTS[what]} (submission {submission_id})",
            recipients=[admin],
            body=render_template("email/alert.txt", **context),
            charset=UTF8_QUOTED_PRINTABLE,
        )
    )
    return "alerted"
