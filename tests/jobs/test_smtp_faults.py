"""A mail server that misbehaves after it has the message: one email, never a resend.

Each test fails on a job that treats every SMTP error alike (retry), which is how
a server that hangs up on QUIT used to get four copies of every email.
"""

import logging

import pytest

from app import keys, submissions
from harness.submissions import submit

ADA = "ada@example.com"
ADMIN = "admin@work-it.localhost"


@pytest.fixture
def app_config(app_config):
    # One connection per email, so that every email ends with its own QUIT.
    return {**app_config, "RETRY_MAX": 3, "MAIL_TIMEOUT_SECONDS": 1, "MAIL_KEEPALIVE_SECONDS": 0}


def test_a_server_that_hangs_up_on_quit_after_accepting_gets_one_email(
    app, run_jobs, smtp_sink, redis
):
    smtp_sink.hang_up_on_quit = True
    [submission_id] = submit(app, email=ADA)

    run_jobs()  # would run all four attempts if the failed QUIT counted as a failure

    assert len(smtp_sink.sent_to(ADA)) == 1
    stored = submissions.load(redis, submission_id)
    assert (stored.status, stored.sent, stored.attempts) == ("sent", True, 1)


def test_an_answer_that_never_comes_is_unconfirmed_not_resent(
    app, run_jobs, smtp_sink, redis, caplog
):
    smtp_sink.answer_delay = 3  # past MAIL_TIMEOUT_SECONDS=1, after the sink kept the message
    [submission_id] = submit(app, email=ADA)

    with caplog.at_level(logging.ERROR, logger="jobs.alerts"):
        run_jobs()
        smtp_sink.answer_delay = 0
        run_jobs()  # a second pass (a requeue, the sweeper) must not resend either

    assert len(smtp_sink.sent_to(ADA)) == 1
    stored = submissions.load(redis, submission_id)
    assert (stored.status, stored.sent, stored.attempts) == ("unconfirmed", False, 1)
    assert "DeliveryUnknown" in stored.last_error
    assert [r.getMessage() for r in caplog.records if "RED FLAG unconfirmed" in r.getMessage()]
    [alert] = smtp_sink.sent_to(ADMIN)
    assert "may or may not have been delivered" in alert["Subject"]
    assert redis.zscore(keys.PENDING, submission_id) is None  # not swept again


def test_a_4xx_after_the_data_is_a_definite_refusal_retried_then_delivered(
    app, run_jobs, smtp_sink, redis
):
    """Only a missing answer is unconfirmed: a server that answers the message with a
    4xx has said it did not take it, so the job retries (and delivers) as for any
    transient failure, rather than recording an unconfirmed delivery."""
    smtp_sink.data_replies = ["451 4.3.0 Queue full, try later"]
    [submission_id] = submit(app, email=ADA)

    run_jobs()

    stored = submissions.load(redis, submission_id)
    assert (stored.status, stored.sent, stored.attempts) == ("sent", True, 2)
    assert stored.last_error == ""
    assert len(smtp_sink.sent_to(ADA)) == 1
    assert smtp_sink.data_replies == []  # the refusal was given, and to the message


def test_a_5xx_after_the_data_is_a_permanent_refusal_not_retried(app, run_jobs, smtp_sink, redis):
    """A 5xx to the message (its content refused) will come again on every resend:
    fail at once, though RETRY_MAX=3 and the server would take a second try."""
    smtp_sink.data_replies = ["554 5.6.0 Message content rejected"]
    [submission_id] = submit(app, email=ADA)

    run_jobs()

    stored = submissions.load(redis, submission_id)
    assert (stored.status, stored.sent, stored.attempts) == ("failed", False, 1)
    assert stored.last_error.startswith("permanent: SMTPDataError: (554")
    assert smtp_sink.sent_to(ADA) == []
    assert smtp_sink.data_replies == []


def test_the_timeout_bounds_the_whole_session_not_each_step(make_app, run_jobs, smtp_sink, redis):
    """Each step answered within MAIL_TIMEOUT_SECONDS (1 s), the session not: give up."""
    app = make_app(RETRY_MAX=0)
    smtp_sink.step_delay = 0.7  # MAIL FROM, then RCPT TO: 1.4 s before the message
    [submission_id] = submit(app, email=ADA)

    with app.app_context():
        run_jobs()

    stored = submissions.load(redis, submission_id)
    assert (stored.status, stored.attempts) == ("failed", 1)
    assert "timed out" in stored.last_error
    assert smtp_sink.sent_to(ADA) == []
