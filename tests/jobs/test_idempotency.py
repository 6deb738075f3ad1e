"""The windows where one email could become two without any crash: a lost lock, a
Redis that blinks right after the server accepted, a failure recorded after a
concurrent run sent the email."""

import threading

from redis import Redis
from rq import Queue, SimpleWorker

from app import keys, submissions
from harness.polling import wait_for
from harness.submissions import submit
from jobs.worker import AppJob

ADA = "ada@example.com"


def drain(app, redis: Redis) -> None:
    queue = Queue("mailers", connection=redis, job_class=AppJob)
    with app.app_context():
        SimpleWorker([queue], connection=redis, job_class=AppJob).work(burst=True)


def events(redis, submission_id) -> list[str]:
    return [f"{e['event']}: {e['detail']}" for e in submissions.journey(redis, submission_id)]


def test_a_run_that_lost_its_lock_refuses_to_send(make_app, redis, smtp_sink):
    """While the mailer dawdles, the lock passes to another run (as when it expires).
    This run must not send; its retry sends once, under a lock of its own."""
    app = make_app(MAILER_DELAY_SECONDS=1)
    [submission_id] = submit(app, email=ADA)
    lock = keys.lock(submission_id)

    def take_over() -> None:  # once the run is in the mailer's delay, holding the lock
        wait_for(lambda: submissions.load(redis, submission_id).status == "sending", 30, "sending")
        redis.set(lock, "another-run", px=1500)

    taken = threading.Thread(target=take_over)
    taken.start()

    drain(app, redis)
    taken.join()

    assert len(smtp_sink.sent_to(ADA)) == 1
    stored = submissions.load(redis, submission_id)
    assert (stored.status, stored.attempts) == ("sent", 2)
    assert any("attempt 1 failed" in e and "LockLost" in e for e in events(redis, submission_id))


def test_a_redis_blink_after_acceptance_does_not_send_twice(make_app, restartable_redis, smtp_sink):
    """Redis goes away just as the server accepts, and comes back a second later:
    the `sent` write waits for it rather than failing the job into a resend."""
    app = make_app(REDIS_URL=restartable_redis.url)
    redis = Redis.from_url(restartable_redis.url)
    [submission_id] = submit(app, email=ADA)
    back = threading.Timer(1.0, restartable_redis.start)

    def blink() -> None:
        smtp_sink.on_accept = None
        restartable_redis.stop()
        back.start()

    smtp_sink.on_accept = blink
    drain(app, redis)
    back.join()  # its wait for Redis to answer ends before the fixture stops Redis
    drain(app, redis)  # anything left to retry would run now

    assert len(smtp_sink.sent_to(ADA)) == 1
    stored = submissions.load(redis, submission_id)
    assert (stored.status, stored.sent, stored.attempts) == ("sent", True, 1)
    redis.close()


def test_sent_is_final_a_late_failure_changes_nothing(app, redis, run_jobs, smtp_sink):
    [submission_id] = submit(app, email=ADA)
    run_jobs()

    assert not submissions.mark_attempt_failed(redis, submission_id, "too-late", final=True)
    assert not submissions.mark_attempt_failed(redis, submission_id, "too-late", final=False)

    stored = submissions.load(redis, submission_id)
    assert (stored.status, stored.sent, stored.last_error) == ("sent", True, "")
    assert not any("too-late" in e for e in events(redis, submission_id))
