""" "Done" is defined once (app/submissions.py: CLOSED, FINAL), and every change of state
honours it. Two windows where they once disagreed, each with real worker processes:

- a run that failed after its email was left `unconfirmed` (as when its worker dies
  right after, before RQ records the job's success) must not reopen it: a retry would
  send the email again;
- a duplicate run that waits for a live run's lock and gives up is no failed attempt:
  it must not write `queued` over a submission that is being sent.
"""

import sys

import pytest
from rq.job import Job

from app import submissions
from harness.polling import wait_for
from harness.submissions import submit
from harness.worker_processes import WorkerProcesses, process_env
from jobs.failures import on_send_failure
from jobs.gif_sender import LOCK_WAIT_SECONDS, enqueue_gif_email
from jobs.worker import WorkHorseKilled

ADA = "ada@example.com"


def events(redis, submission_id: str) -> list[str]:
    return [step["event"] for step in submissions.journey(redis, submission_id)]


def unconfirmed_run(app, smtp_sink, redis, run_jobs) -> str:
    """One submission whose run left it `unconfirmed`: the sink kept the message and its
    answer came after MAIL_TIMEOUT_SECONDS."""
    app.config["MAIL_TIMEOUT_SECONDS"] = 1
    app.config["MAIL_KEEPALIVE_SECONDS"] = 0
    smtp_sink.answer_delay = 2
    [submission_id] = submit(app, email=ADA)
    run_jobs()
    assert submissions.load(redis, submission_id).status == "unconfirmed"
    smtp_sink.answer_delay = 0
    return submission_id


def test_a_worker_death_after_unconfirmed_does_not_reopen_it(app, smtp_sink, redis, run_jobs):
    """What jobs/runtime/pool.py does for a worker that died running the job (its failure
    callback, then RQ's retry), after the run had marked it unconfirmed."""
    submission_id = unconfirmed_run(app, smtp_sink, redis, run_jobs)
    job = Job.fetch(submissions.load(redis, submission_id).job_id, connection=redis)

    with app.app_context():
        on_send_failure(job, redis, WorkHorseKilled, WorkHorseKilled("killed"), None)
        enqueue_gif_email(submission_id)  # the retry RQ would run
    run_jobs()

    assert len(smtp_sink.sent_to(ADA)) == 1
    assert submissions.load(redis, submission_id).status == "unconfirmed"
    assert "attempt failed" not in events(redis, submission_id)


@pytest.mark.slow
def test_a_failure_after_unconfirmed_in_a_real_worker_does_not_reopen_it(
    app, app_config, smtp_sink, redis
):
    """In a real worker process, the run fails right after marking the submission
    unconfirmed (the red flag's enqueue meets a broken `default` queue), so RQ calls the
    failure callback and retries: the retries must find it closed, not send again."""
    settings = {**app_config, "MAIL_TIMEOUT_SECONDS": 1, "MAIL_KEEPALIVE_SECONDS": 0}
    smtp_sink.answer_delay = 2
    redis.set("rq:queue:default", "not a list")  # RQ's enqueue there raises WRONGTYPE
    command = [sys.executable, "-m", "jobs.runtime.pool", "--workers", "1", "mailers"]
    with WorkerProcesses(process_env(settings), command) as workers:
        workers.start(1)
        [submission_id] = submit(app, email=ADA)
        job_id = submissions.load(redis, submission_id).job_id
        wait_for(
            lambda: Job.fetch(job_id, connection=redis).get_status() == "failed",
            60,
            "the job's last try",
        )

    assert len(smtp_sink.sent_to(ADA)) == 1
    assert submissions.load(redis, submission_id).status == "unconfirmed"


@pytest.mark.slow
def test_a_duplicate_that_waits_for_a_live_run_is_not_a_failed_attempt(
    app, app_config, smtp_sink, redis
):
    """The live run outlasts the duplicate's wait for the lock."""
    settings = {**app_config, "MAILER_DELAY_SECONDS": LOCK_WAIT_SECONDS + 2}
    with WorkerProcesses(process_env(settings)) as workers:
        workers.start(2)
        [submission_id] = submit(app, email=ADA)
        wait_for(lambda: submissions.load(redis, submission_id).status == "sending", 30, "sending")
        with app.app_context():
            duplicate = enqueue_gif_email(submission_id)
        wait_for(lambda: submissions.load(redis, submission_id).sent, 30, "sent")
        wait_for(lambda: duplicate.get_status(refresh=True) == "finished", 30, "the duplicate")

    stored = submissions.load(redis, submission_id)
    assert (stored.status, stored.attempts, stored.last_error) == ("sent", 1, "")
    assert "attempt failed" not in events(redis, submission_id)
    assert len(smtp_sink.sent_to(ADA)) == 1
