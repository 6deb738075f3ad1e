"""Retry what is transient, stop on what is permanent, and raise one red flag per dead job."""

import logging

import pytest
from rq import Queue, SimpleWorker
from rq.registry import FailedJobRegistry

from app import submissions
from harness.submissions import submit
from jobs.worker import AppJob
from tests.conftest import ThoughtForm

ADA = "ada@example.com"
ADMIN = "admin@work-it.localhost"


def alerts_for(smtp_sink, submission_id):
    return [m for m in smtp_sink.sent_to(ADMIN) if submission_id in m["Subject"]]


@pytest.mark.parametrize(
    ("reply", "attempts"),
    [("550 5.1.1 No such user", 1), ("553 5.1.3 Bad address syntax", 1)],
)
def test_a_permanent_refusal_is_not_retried(app, run_jobs, smtp_sink, redis, reply, attempts):
    smtp_sink.rcpt_replies[ADA] = [reply]
    [submission_id] = submit(app, email=ADA)

    run_jobs()

    stored = submissions.load(redis, submission_id)
    assert (stored.status, stored.sent, stored.attempts) == ("failed", False, attempts)
    assert stored.last_error.startswith("permanent: SMTPRecipientsRefused")
    assert FailedJobRegistry("mailers", connection=redis).get_job_ids() == [stored.job_id]


@pytest.mark.parametrize("fault", ["451 4.7.1 Try again later", "drop"])
def test_a_transient_failure_is_retried_and_then_delivers(app, run_jobs, smtp_sink, redis, fault):
    if fault == "drop":
        smtp_sink.drop_next = 1
    else:
        smtp_sink.rcpt_replies[ADA] = [fault]
    [submission_id] = submit(app, email=ADA)

    run_jobs()  # the retry runs at once in tests (RETRY_BASE_SECONDS=0)

    assert len(smtp_sink.sent_to(ADA)) == 1
    stored = submissions.load(redis, submission_id)
    assert (stored.status, stored.attempts, stored.last_error) == ("sent", 2, "")


def test_retries_running_out_raise_one_red_flag(app, run_jobs, smtp_sink, redis, caplog):
    smtp_sink.rcpt_replies[ADA] = ["451 4.3.0 Mailbox busy"] * 3
    [submission_id] = submit(app, email=ADA)

    with caplog.at_level(logging.ERROR, logger="jobs.alerts"):
        run_jobs()  # 3 attempts, then dead; then the alert job runs

    stored = submissions.load(redis, submission_id)
    assert (stored.status, stored.attempts) == ("failed", 3)
    flags = [r for r in caplog.records if "RED FLAG" in r.getMessage()]
    assert len(flags) == 1
    assert submission_id in flags[0].getMessage() and "451" in flags[0].getMessage()
    [alert] = alerts_for(smtp_sink, submission_id)
    assert stored.job_id in alert.get_content()
    assert f'rq requeue --url "$REDIS_URL" --queue mailers {stored.job_id}' in alert.get_content()


def test_a_requeued_dead_job_is_safe_and_does_not_alert_twice(app, run_jobs, smtp_sink, redis):
    smtp_sink.rcpt_replies[ADA] = ["550 5.1.1 No such user"] * 2
    [submission_id] = submit(app, email=ADA)
    run_jobs()
    job_id = submissions.load(redis, submission_id).job_id

    FailedJobRegistry("mailers", connection=redis).requeue(job_id)  # still refused
    run_jobs()
    assert len(alerts_for(smtp_sink, submission_id)) == 1

    FailedJobRegistry("mailers", connection=redis).requeue(job_id)  # the address works now
    run_jobs()
    assert len(smtp_sink.sent_to(ADA)) == 1
    assert submissions.load(redis, submission_id).status == "sent"


def test_no_admin_email_means_the_log_line_only(app, run_jobs, smtp_sink, redis, caplog):
    app.config["ADMIN_EMAIL"] = ""
    smtp_sink.rcpt_replies[ADA] = ["550 5.1.1 No such user"]
    [submission_id] = submit(app, email=ADA)

    with caplog.at_level(logging.WARNING):
        run_jobs()

    assert smtp_sink.messages == []
    assert any("RED FLAG" in r.getMessage() for r in caplog.records)
    assert submissions.load(redis, submission_id).status == "failed"


def test_retry_max_zero_accepts_and_makes_the_first_failure_final(make_app, smtp_sink, redis):
    app = make_app(RETRY_MAX=0)
    response = ThoughtForm(app.test_client()).submit(email=ADA)
    assert response.status_code == 303
    submission_id = response.headers["Location"].rsplit("/", 1)[-1]
    smtp_sink.rcpt_replies[ADA] = ["451 4.7.1 Try again later"]

    queue = Queue("mailers", connection=redis, job_class=AppJob)
    with app.app_context():
        SimpleWorker([queue], connection=redis, job_class=AppJob).work(burst=True)

    stored = submissions.load(redis, submission_id)
    assert (stored.status, stored.attempts) == ("failed", 1)
    assert smtp_sink.sent_to(ADA) == []


def test_a_refused_sender_is_retried_and_flagged_once_for_all_jobs(
    app, run_jobs, smtp_sink, redis, caplog
):
    """A setup error fails every job alike: retry them all, raise one red flag for the
    cause (not one per dead job), and deliver once the server takes the sender."""
    smtp_sink.mail_from_replies = ["550 5.7.1 Sender not allowed"] * 6  # 3 jobs x 2 tries
    ids = submit(app, count=3)

    with caplog.at_level(logging.ERROR, logger="jobs.alerts"):
        run_jobs()

    flags = [r.getMessage() for r in caplog.records if "RED FLAG" in r.getMessage()]
    assert len(flags) == 1 and "configuration" in flags[0] and "SMTPSenderRefused" in flags[0]
    assert len(smtp_sink.sent_to(ADMIN)) == 1
    assert "refuses Work-It's settings" in smtp_sink.sent_to(ADMIN)[0]["Subject"]
    stored = [submissions.load(redis, i) for i in ids]
    assert [(s.status, s.attempts) for s in stored] == [("sent", 3)] * 3
    assert all(s.last_error == "" for s in stored)


# Addresses the mailer cannot write, stored before the form learnt to refuse them.
POISON = ["üser@example.com", "ｕser@example.com"]


@pytest.mark.parametrize("address", POISON)
def test_an_address_the_mailer_cannot_write_fails_at_once(app, run_jobs, redis, address):
    [submission_id] = submit(app, email=address)

    run_jobs()

    stored = submissions.load(redis, submission_id)
    assert (stored.status, stored.attempts) == ("failed", 1)
    assert stored.last_error.startswith("permanent: ")


def test_many_jobs_dead_of_one_cause_mail_the_admin_once(app, run_jobs, smtp_sink, caplog):
    ids = submit(app, count=4, email="üser{n}@example.com")

    with caplog.at_level(logging.ERROR, logger="jobs.alerts"):
        run_jobs()

    flags = [r.getMessage() for r in caplog.records if "RED FLAG" in r.getMessage()]
    assert len(flags) == 4  # each dead job is logged
    assert len(smtp_sink.sent_to(ADMIN)) == 1  # one email for their one cause
    assert any(i in smtp_sink.sent_to(ADMIN)[0]["Subject"] for i in ids)
