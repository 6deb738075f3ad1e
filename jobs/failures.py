"""Which failures are worth a retry, which are not, and which are the setup's fault.

The articles' rule: retry what is transient, stop on what will fail the same way
every time. An SMTP reply says which by its code (RFC 5321, section 4.2.1: 4xx
"try again later", 5xx "this will not work") and by its stage:

- permanent: the recipient refused at RCPT TO with a 5xx, or this message refused
  after DATA with a 5xx (but 552, a size limit), or the email library refusing the
  submission's data (a ValueError or UnicodeError, such as an address it cannot
  write, accepted before the form refused such addresses): no retry can fix it;
- configuration: authentication refused (530, 534, 535), the sender refused at
  MAIL FROM, a size limit (552), or a server that lacks what we ask of it. Every
  submission will fail the same way until someone fixes the settings, so it is
  retried with backoff and reported once per cause, not once per job;
- transient: everything else (refused or dropped connections, 4xx, timeouts, a
  busy lock, a dead worker).

After a failed run RQ calls ``on_send_failure`` (declared with the job's policy in
jobs/gif_sender.py): it records the attempt, stops retries that cannot help, raises
the red flag for a dead job, and counts how the run ended.
"""

import logging
import smtplib
from email.errors import MessageError

from flask_mail import BadHeaderError
from rq.job import Job

from app import submissions
from app.ops import bookkeeping
from jobs import alerts
from jobs.outcomes import Outcome

log = logging.getLogger(__name__)

PERMANENT, CONFIGURATION, TRANSIENT = "permanent", "configuration", "transient"
SETUP_CODES = {530, 534, 535, 552}


class SubmissionBusy(Exception):
    """Another run holds this submission's lock; RQ will retry this one later."""


class LockLost(Exception):
    """This run's lock expired before it could send: another run may hold it now.
    Refuse to send; the retry finds the email sent, or sends it under a lock of its own."""


class HandedBack(BaseException):
    """Raised in a run whose stopping worker hands it back before it sent anything
    (jobs/runtime/shutdown.py). A BaseException, like KeyboardInterrupt: a job's
    ``except Exception`` (a fallback GIF, say) must not swallow it and carry on
    towards the send."""


def kind(exc: BaseException | None) -> str:
    if isinstance(exc, BadHeaderError | MessageError | ValueError):
        return PERMANENT
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return PERMANENT if all(code >= 500 for code in codes) else TRANSIENT
    if isinstance(exc, smtplib.SMTPNotSupportedError | smtplib.SMTPHeloError):
        return CONFIGURATION
    if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500:
        if exc.smtp_code in SETUP_CODES or isinstance(exc, smtplib.SMTPSenderRefused):
            return CONFIGURATION
        return PERMANENT
    return TRANSIENT


def cause(exc: BaseException) -> str:
    """What a configuration error is about, to report it once, e.g. `SMTPSenderRefused 550`."""
    return f"{type(exc).__name__} {getattr(exc, 'smtp_code', '')}".strip()


def describe(exc: BaseException | None) -> str:
    """One line for the submission page and the logs."""
    if exc is None:
        return "unknown error"
    text = str(exc) or type(exc).__name__
    return f"{kind(exc)}: {type(exc).__name__}: {text}"[:500]


def on_send_failure(job: Job, connection, exc_type, exc_value, traceback) -> None:
    """RQ calls this after every failed run, before it decides on a retry; runs that
    died with their worker come here too (as AbandonedJobError), when RQ cleans up.
    It handles the failure, then counts the run's outcome for /metrics."""
    bookkeeping.count_run(connection, job, _handle_failure(job, connection, exc_value))


def _handle_failure(job: Job, connection, exc_value) -> Outcome:
    """The failure callback's work; returns how the run ended.

    It records the error on the submission (unless the submission is closed: sent,
    unconfirmed or cancelled, see app/submissions.py), stops retries of permanent failures
    (RQ reads ``retries_left`` right after this returns), and raises the red flag
    when the job is dead: no retry left. A configuration error (the mail server
    refuses our login or our sender) is flagged once for its cause instead, however
    many jobs it fails.
    """
    submission_id = job.args[0]
    if isinstance(exc_value, HandedBack):
        # Not a failed attempt: the worker was stopping before this run sent anything,
        # and puts the job back on its queue. The attempt it began does not count.
        submissions.hand_back(connection, submission_id)
        log.info(
            "job_id=%s submission_id=%s outcome=%s", job.id, submission_id, Outcome.HANDED_BACK
        )
        return Outcome.HANDED_BACK
    submission = submissions.load(connection, submission_id)
    if submission is None or submissions.is_closed(submission):
        job.retries_left = 0  # nothing left to do: a retry would only return at once
        return Outcome.NOTHING_TO_DO
    if isinstance(exc_value, SubmissionBusy):
        # Not a failed attempt: a live run holds the lock and decides how this one ends
        # (and if it died, its own failure or the sweeper retries it). RQ retries this
        # run later, which then finds the email sent or takes the lock itself.
        return _noted(job, submission_id, Outcome.BUSY)
    failure = kind(exc_value)
    if failure == PERMANENT:
        job.retries_left = 0
    final = not job.should_retry
    error = describe(exc_value)
    if not submissions.mark_attempt_failed(connection, submission_id, error, final):
        job.retries_left = 0  # another run sent it meanwhile: nothing to retry, no flag
        return Outcome.ALREADY_SENT
    outcome = Outcome.DEAD if final else Outcome.FAILED_RETRYING
    log.warning(
        "job_id=%s submission_id=%s queue=%s outcome=%s error=%r",
        job.id,
        submission_id,
        job.origin,
        outcome,
        error,
    )
    if failure == CONFIGURATION:
        alerts.raise_setup_flag(connection, cause(exc_value), submission_id, error)
    elif final:
        alerts.raise_red_flag(connection, job.id, submission_id, error, cause=cause(exc_value))
    return outcome


def _noted(job: Job, submission_id: str, outcome: Outcome) -> Outcome:
    """No failed attempt, just how the run ended, in the log."""
    log.info("job_id=%s submission_id=%s outcome=%s", job.id, submission_id, outcome)
    return outcome
