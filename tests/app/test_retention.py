"""RETENTION_DAYS: a finished submission, its journey and its failed job expire; a
pending one is kept however old it is."""

import time

from rq import Queue, SimpleWorker
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from app import keys, submissions
from harness.polling import wait_for
from harness.submissions import submit
from jobs.worker import AppJob

DAY = 86400


def ttls(redis, submission_id) -> tuple[int, int]:
    both = keys.submission(submission_id), keys.journey(submission_id)
    return tuple(redis.ttl(k) for k in both)


def test_a_sent_submission_expires_after_the_retention_days(app, redis, run_jobs):
    app.config["RETENTION_DAYS"] = 2
    [submission_id] = submit(app)
    assert ttls(redis, submission_id) == (-1, -1)  # pending: kept

    run_jobs()

    assert submissions.load(redis, submission_id).status == "sent"
    for ttl in ttls(redis, submission_id):
        assert 2 * DAY - 60 < ttl <= 2 * DAY


def test_a_failed_submission_and_its_job_expire_but_a_retried_one_is_kept(
    make_app, redis, smtp_sink
):
    app = make_app(RETENTION_DAYS=1, RETRY_MAX=1, RETRY_BASE_SECONDS=0)
    [submission_id] = submit(app, email="ada@example.com")
    smtp_sink.rcpt_replies["ada@example.com"] = ["451 4.7.1 Try again later"] * 2
    queue = Queue("mailers", connection=redis)

    with app.app_context():
        worker = SimpleWorker([queue], connection=redis, job_class=AppJob)
        worker.work(burst=True, max_jobs=1)  # the first attempt fails: a retry is coming
        assert submissions.load(redis, submission_id).status == "queued"
        assert ttls(redis, submission_id) == (-1, -1)
        wait_for(lambda: queue.count == 1 or _move_due(queue), 10, "the retry to be due")
        worker.work(burst=True)

    assert submissions.load(redis, submission_id).status == "failed"
    for ttl in ttls(redis, submission_id):
        assert DAY - 60 < ttl <= DAY
    [job_id] = FailedJobRegistry(queue=queue).get_job_ids()
    assert DAY - 60 < redis.ttl(f"rq:job:{job_id}") <= DAY


def _move_due(queue) -> bool:
    """Enqueue retries that are due, as a worker's scheduler would."""
    registry = ScheduledJobRegistry(queue=queue)
    for job_id in registry.get_jobs_to_schedule(int(time.time()) + 1):
        queue.enqueue_job(queue.fetch_job(job_id))
        registry.remove(job_id)
    return queue.count == 1


def test_an_expired_submission_is_gone(app, redis, run_jobs, client):
    app.config["RETENTION_DAYS"] = 1 / DAY  # one second
    [submission_id] = submit(app)
    run_jobs()

    wait_for(lambda: ttls(redis, submission_id) == (-2, -2), 10, "the keys to expire")
    assert client.get(f"/api/thoughts/{submission_id}").status_code == 404
