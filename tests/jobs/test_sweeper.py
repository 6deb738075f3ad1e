from rq import Queue
from rq.job import Job

from app import submissions
from app.thoughts import accept
from jobs.sweeper import requeue_stuck_submissions, stuck_after_seconds


def submit(app) -> str:
    with app.test_request_context():
        return accept("ada@example.com", "sweep me").id


def age(redis, submission_id: str, seconds: float) -> None:
    """Pretend the submission was last touched ``seconds`` ago."""
    from datetime import UTC, datetime, timedelta

    stamp = (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(timespec="milliseconds")
    redis.hset(submissions.key(submission_id), "updated_at", stamp)


def sweep(app) -> int:
    with app.app_context():
        return requeue_stuck_submissions()


def test_a_fresh_or_waiting_submission_is_left_alone(app, redis):
    submission_id = submit(app)
    assert sweep(app) == 0  # fresh
    age(redis, submission_id, stuck_after_seconds(app.config) + 1)
    assert sweep(app) == 0  # old, but its job is still queued


def test_a_submission_whose_job_vanished_is_enqueued_again(app, redis, run_jobs, smtp_sink):
    submission_id = submit(app)
    Queue("mailers", connection=redis).empty()  # the job is gone, as if never saved
    age(redis, submission_id, stuck_after_seconds(app.config) + 1)

    assert sweep(app) == 1
    run_jobs()

    assert len(smtp_sink.messages) == 1
    assert submissions.load(redis, submission_id).status == "sent"


def test_a_started_job_past_its_timeout_counts_as_dead(app, redis):
    submission_id = submit(app)
    job = Job.fetch(submissions.load(redis, submission_id).job_id, connection=redis)
    job.set_status("started")
    redis.hset(submissions.key(submission_id), "status", "sending")
    age(redis, submission_id, stuck_after_seconds(app.config) + 1)

    assert sweep(app) == 1
    assert submissions.load(redis, submission_id).job_id != job.id


def test_sent_and_failed_submissions_leave_the_pending_set(app, redis, run_jobs):
    submission_id = submit(app)
    run_jobs()
    assert redis.zscore(submissions.pending_key(), submission_id) is None
    assert sweep(app) == 0


def test_the_sweep_can_be_run_by_hand(app, redis):
    submission_id = submit(app)
    Queue("mailers", connection=redis).empty()
    age(redis, submission_id, stuck_after_seconds(app.config) + 1)

    result = app.test_cli_runner().invoke(args=["requeue-stuck"])

    assert result.output.strip() == "requeued 1 stuck submission(s)"
