import logging
from datetime import UTC, datetime, timedelta

import pytest
from flask.cli import FlaskGroup
from rq import Queue
from rq.job import Job

from app import keys, submissions
from harness.submissions import submit
from jobs.sweeper import MAX_REQUEUES, requeue_stuck_submissions, stuck_after_seconds


def age(redis, submission_id: str, seconds: float) -> None:
    """Pretend the submission was last touched ``seconds`` ago."""
    stamp = (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(timespec="milliseconds")
    redis.hset(keys.submission(submission_id), "updated_at", stamp)


def sweep(app) -> int:
    with app.app_context():
        return requeue_stuck_submissions()


def test_a_fresh_or_waiting_submission_is_left_alone(app, redis):
    [submission_id] = submit(app)
    assert sweep(app) == 0  # fresh
    age(redis, submission_id, stuck_after_seconds(app.config) + 1)
    assert sweep(app) == 0  # old, but its job is still queued


def die_mid_job(redis, submission_id: str, seconds_ago: float) -> Job:
    """Leave the submission as a worker killed mid-job does: `sending`, its job `started`."""
    job = Job.fetch(submissions.load(redis, submission_id).job_id, connection=redis)
    Queue("mailers", connection=redis).remove(job)
    job.set_status("started")
    redis.hset(keys.submission(submission_id), "status", "sending")
    age(redis, submission_id, seconds_ago)
    return job


def test_a_submission_stuck_mid_job_is_enqueued_again_and_sent_once(
    app, redis, run_jobs, smtp_sink
):
    [submission_id] = submit(app)
    die_mid_job(redis, submission_id, stuck_after_seconds(app.config) + 1)

    assert sweep(app) == 1
    run_jobs()

    assert len(smtp_sink.messages) == 1
    assert submissions.load(redis, submission_id).status == "sent"


@pytest.mark.parametrize("how", ["cancel", "delete"])
def test_a_cancelled_or_deleted_job_stays_cancelled(app, redis, run_jobs, smtp_sink, how):
    [submission_id] = submit(app)
    job = Job.fetch(submissions.load(redis, submission_id).job_id, connection=redis)
    job.cancel() if how == "cancel" else job.delete()

    for _ in range(2):  # now, and long after
        assert sweep(app) == 0
        age(redis, submission_id, stuck_after_seconds(app.config) + 1)
    run_jobs()

    stored = submissions.load(redis, submission_id)
    assert stored.status == "cancelled" and job.id in stored.last_error
    assert redis.zscore(keys.PENDING, submission_id) is None
    assert smtp_sink.messages == []


def test_a_submission_stuck_again_and_again_is_dead_with_one_red_flag(app, redis, caplog):
    [submission_id] = submit(app)
    stuck = stuck_after_seconds(app.config) + 1
    for _ in range(MAX_REQUEUES):
        die_mid_job(redis, submission_id, stuck)
        assert sweep(app) == 1

    die_mid_job(redis, submission_id, stuck)
    with caplog.at_level(logging.ERROR, logger="jobs.alerts"):
        assert sweep(app) == 0
        assert sweep(app) == 0

    stored = submissions.load(redis, submission_id)
    assert stored.status == "failed" and "stuck" in stored.last_error
    assert len([r for r in caplog.records if "RED FLAG dead job" in r.getMessage()]) == 1


def test_a_started_job_past_its_timeout_counts_as_dead(app, redis):
    [submission_id] = submit(app)
    job = die_mid_job(redis, submission_id, stuck_after_seconds(app.config) + 1)

    assert sweep(app) == 1
    assert submissions.load(redis, submission_id).job_id != job.id


def test_sent_and_failed_submissions_leave_the_pending_set(app, redis, run_jobs):
    [submission_id] = submit(app)
    run_jobs()
    assert redis.zscore(keys.PENDING, submission_id) is None
    assert sweep(app) == 0


def test_the_sweep_can_be_run_by_hand(app, redis):
    [submission_id] = submit(app)
    die_mid_job(redis, submission_id, stuck_after_seconds(app.config) + 1)

    # The flask command's own group: jobs/ adds requeue-stuck to it (pyproject.toml's
    # flask.commands entry point), since app/ does not import jobs/.
    flask_command = FlaskGroup(create_app=lambda: app)
    result = app.test_cli_runner().invoke(flask_command, ["requeue-stuck"])

    assert result.output.strip() == "requeued 1 stuck submission(s)"


def test_the_requeue_is_in_the_submission_s_journey(app, redis):
    [submission_id] = submit(app)
    old_job = die_mid_job(redis, submission_id, stuck_after_seconds(app.config) + 1)

    assert sweep(app) == 1

    new_job_id = submissions.load(redis, submission_id).job_id
    journey = [(e["event"], e["detail"]) for e in submissions.journey(redis, submission_id)]
    assert journey[-2:] == [
        ("requeued by the sweeper", f"no job of its own was waiting (old job {old_job.id})"),
        ("enqueued", f"job {new_job_id} on queue mailers"),
    ]


def test_a_job_taken_off_its_queue_by_a_worker_that_died_is_enqueued_again(
    app, redis, run_jobs, smtp_sink
):
    """RQ's multi-queue worker pops a job (BLPOP) before it marks it started; a worker
    killed in between leaves the job `queued` in no queue. The soak found one."""
    [submission_id] = submit(app)
    job_id = submissions.load(redis, submission_id).job_id
    assert redis.lpop("rq:queue:mailers") == job_id.encode()  # the dying worker's pop
    assert Job.fetch(job_id, connection=redis).get_status() == "queued"
    age(redis, submission_id, stuck_after_seconds(app.config) + 1)

    assert sweep(app) == 1
    run_jobs()

    assert len(smtp_sink.messages) == 1
    assert submissions.load(redis, submission_id).status == "sent"


@pytest.mark.parametrize("status", ["scheduled", "deferred"])
def test_a_job_left_waiting_in_no_registry_is_enqueued_again(
    app, redis, run_jobs, smtp_sink, status
):
    """RQ's retry sets `scheduled` at once and schedules in a transaction run after: a
    pool killed in between (make dev's pool, killed as Rule 6 kills it) leaves a job
    that says `scheduled` and that no scheduler will ever move."""
    [submission_id] = submit(app)
    job = Job.fetch(submissions.load(redis, submission_id).job_id, connection=redis)
    Queue("mailers", connection=redis).remove(job)
    job.set_status(status)
    age(redis, submission_id, stuck_after_seconds(app.config) + 1)

    assert sweep(app) == 1
    run_jobs()

    assert len(smtp_sink.messages) == 1
    assert submissions.load(redis, submission_id).status == "sent"


def test_a_job_really_scheduled_is_left_to_its_time(app, redis):
    [submission_id] = submit(app)
    job = Job.fetch(submissions.load(redis, submission_id).job_id, connection=redis)
    queue = Queue("mailers", connection=redis)
    queue.remove(job)
    queue.schedule_job(job, datetime.now(UTC) + timedelta(minutes=5))
    assert job.get_status() == "scheduled"
    age(redis, submission_id, stuck_after_seconds(app.config) + 1)

    assert sweep(app) == 0
