import pytest
from rq.job import Job
from rq.registry import FailedJobRegistry

from app import keys, submissions
from app.ops.replication import NotReplicated
from harness.submissions import submit
from jobs.gif_sender import enqueue_gif_email, retry_intervals_seconds, send_gif_email
from jobs.outcomes import Outcome

ADA = "ada@example.com"


def test_later_mode_sends_one_email_with_both_parts_and_the_gif(app, run_jobs, smtp_sink, redis):
    [submission_id] = submit(app, email=ADA, thought="Fish & <chips>")
    assert smtp_sink.messages == []  # nothing sent inside the request

    run_jobs()

    [message] = smtp_sink.messages
    assert message["To"] == ADA
    assert message["From"] == "Work-It <gifs@work-it.localhost>"
    assert "Fish & <chips>" in message["Subject"]
    assert "Fish & <chips>" in message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Fish &amp; &lt;chips&gt;" in html and "<chips>" not in html
    [gif] = [part for part in message.walk() if part.get_content_type() == "image/gif"]
    assert f'src="cid:{gif["Content-ID"].strip("<>")}"' in html
    assert gif.get_content()[:6] == b"GIF89a"

    stored = submissions.load(redis, submission_id)
    assert (stored.status, stored.sent, stored.attempts, stored.gif_source) == (
        "sent",
        True,
        1,
        "offline",
    )
    assert stored.sent_at
    # The lock went with the `sent` flag, in one transaction: a duplicate need not wait.
    assert not redis.exists(keys.lock(submission_id))


@pytest.mark.parametrize("thought", ["&" * 280, "\U0001f600" * 280])
def test_a_strict_server_takes_the_longest_thought(app, run_jobs, smtp_sink, redis, thought):
    """The test sink is aiosmtpd with its default limits, which refuses a line over
    1,000 bytes ("500 Line too long"), as many real servers do."""
    [submission_id] = submit(app, email=ADA, thought=thought)

    run_jobs()

    [message] = smtp_sink.messages
    assert thought in message.get_body(("plain",)).get_content()
    assert submissions.load(redis, submission_id).status == "sent"


def test_now_mode_sends_inside_the_request(app, smtp_sink, redis):
    app.config["WORKIT_DELIVERY"] = "now"
    [submission_id] = submit(app, email=ADA)

    assert len(smtp_sink.messages) == 1
    assert redis.llen("rq:queue:mailers") == 0
    assert submissions.load(redis, submission_id).status == "sent"


def test_fifty_enqueues_send_one_email(app, run_jobs, smtp_sink, redis):
    [submission_id] = submit(app, email=ADA)
    with app.app_context():
        for _ in range(49):
            enqueue_gif_email(submission_id)
    assert redis.llen("rq:queue:mailers") == 50

    run_jobs()

    assert len(smtp_sink.messages) == 1
    assert submissions.load(redis, submission_id).attempts == 1
    # 53 events (accepted, 50 enqueued, started, sent): the newest 50 are kept.
    journey = submissions.journey(redis, submission_id)
    assert len(journey) == submissions.JOURNEY_MAX_EVENTS
    assert [step["event"] for step in journey[-3:]] == ["enqueued", "started", "sent"]


def test_a_job_for_an_already_sent_submission_sends_nothing(app, smtp_sink, redis):
    [submission_id] = submit(app, email=ADA)
    with app.app_context():
        assert send_gif_email(submission_id) == "sent"
        assert send_gif_email(submission_id) == Outcome.ALREADY_SENT
    assert len(smtp_sink.messages) == 1


def test_a_held_lock_keeps_every_run_out_and_costs_no_attempt(
    app, run_jobs, redis, smtp_sink, monkeypatch
):
    """While another run holds the lock, a run waits, then gives up without sending,
    counting an attempt or recording a failure (the holder decides); RQ retries it."""
    [submission_id] = submit(app, email=ADA)
    monkeypatch.setattr("jobs.gif_sender.LOCK_WAIT_SECONDS", 0.2)
    held = redis.lock(keys.lock(submission_id), timeout=30)
    assert held.acquire()

    run_jobs()  # the first run and both retries meet the held lock

    stored = submissions.load(redis, submission_id)
    assert (stored.status, stored.attempts, stored.last_error) == ("queued", 0, "")
    assert [step["event"] for step in submissions.journey(redis, submission_id)] == [
        "accepted",
        "enqueued",
    ]
    assert smtp_sink.messages == []
    job = Job.fetch(stored.job_id, connection=redis)
    assert "SubmissionBusy" in job.latest_result().exc_string

    held.release()
    FailedJobRegistry("mailers", connection=redis).requeue(stored.job_id)
    run_jobs()
    assert len(smtp_sink.sent_to(ADA)) == 1


def test_a_lock_no_replica_has_sends_nothing(app, redis, smtp_sink):
    """With REDIS_WAIT_REPLICAS, the lock must reach a replica before the send: a
    replica promoted after the acquire must hold it, or a second run would take it
    and send too. Here no replica is there, so the run sends nothing and frees the lock."""
    [submission_id] = submit(app, email=ADA)
    app.config.update(REDIS_WAIT_REPLICAS=1, REDIS_WAIT_TIMEOUT_MS=20)

    with app.app_context(), pytest.raises(NotReplicated):
        send_gif_email(submission_id)

    assert smtp_sink.messages == []
    assert not redis.exists(keys.lock(submission_id))
    assert submissions.load(redis, submission_id).attempts == 0


def test_smtp_down_leaves_it_unsent_and_failed_then_a_requeue_delivers(
    app, run_jobs, smtp_sink, redis
):
    smtp_sink.stop()
    [submission_id] = submit(app, email=ADA)

    run_jobs()  # the first try and both retries (RETRY_MAX=2, no delay in tests)

    stored = submissions.load(redis, submission_id)
    assert (stored.status, stored.sent, stored.attempts) == ("failed", False, 3)
    assert "ConnectionRefusedError" in stored.last_error
    registry = FailedJobRegistry("mailers", connection=redis)
    assert registry.get_job_ids() == [stored.job_id]

    smtp_sink.start()
    registry.requeue(stored.job_id)
    run_jobs()

    assert len(smtp_sink.sent_to(ADA)) == 1
    assert submissions.load(redis, submission_id).status == "sent"


def test_a_failed_attempt_with_retries_left_goes_back_to_queued(app, run_jobs, smtp_sink, redis):
    app.config["RETRY_BASE_SECONDS"] = 60  # the retry waits in the scheduled registry
    smtp_sink.stop()
    [submission_id] = submit(app, email=ADA)

    run_jobs()

    stored = submissions.load(redis, submission_id)
    assert (stored.status, stored.attempts) == ("queued", 1)
    assert stored.last_error.startswith("transient: ConnectionRefusedError")
    job = Job.fetch(stored.job_id, connection=redis)
    assert (job.get_status(), job.retries_left) == ("scheduled", 1)


def test_retry_intervals_grow_exponentially_with_jitter():
    class Fixed:
        def __init__(self, value):
            self.value = value

        def uniform(self, low, high):
            return self.value

    assert retry_intervals_seconds(5, 4, rng=Fixed(1.0)) == [5, 10, 20, 40]
    assert retry_intervals_seconds(5, 4, rng=Fixed(0.75)) == [4, 8, 15, 30]
    assert retry_intervals_seconds(5, 4, rng=Fixed(1.25)) == [6, 12, 25, 50]


def test_job_is_enqueued_on_mailers_with_its_timeout_and_retry(app, redis):
    [submission_id] = submit(app, email=ADA)
    job_id = submissions.load(redis, submission_id).job_id
    job = Job.fetch(job_id, connection=redis)
    assert job.origin == "mailers"
    assert list(job.args) == [submission_id]
    # lock wait + delay + Giphy connect and read + the SMTP session + the `sent`
    # write's retries (6.3 s) + margin, rounded up
    assert job.timeout == 5 + 0 + 2 + 3 + 10 + 7 + 5
    assert job.retries_left == 2


def test_redis_keys_all_share_the_workit_prefix(app, redis):
    submit(app)
    own = [k.decode() for k in redis.keys("*") if not k.startswith(b"rq:")]
    assert own and all(k.startswith("workit:") for k in own)


def events(redis, submission_id: str) -> list[tuple[str, str]]:
    return [(step["event"], step["detail"]) for step in submissions.journey(redis, submission_id)]


def test_the_journey_records_each_step_of_a_real_run_in_order(app, run_jobs, redis):
    [submission_id] = submit(app, email=ADA)
    run_jobs()

    job_id = submissions.load(redis, submission_id).job_id
    assert events(redis, submission_id) == [
        ("accepted", "stored by the web request (delivery: later)"),
        ("enqueued", f"job {job_id} on queue mailers"),
        ("started", "attempt 1"),
        ("sent", "the mail server accepted it (GIF: offline)"),
    ]
    stamps = [step["at"] for step in submissions.journey(redis, submission_id)]
    assert stamps == sorted(stamps)
    assert stamps[0] == submissions.load(redis, submission_id).created_at


def test_a_451_then_a_retry_shows_both_attempts_in_the_journey(app, run_jobs, smtp_sink, redis):
    smtp_sink.rcpt_replies[ADA] = ["451 Greylisted, try later"]
    [submission_id] = submit(app, email=ADA)

    run_jobs()

    [(_, failed)] = [e for e in events(redis, submission_id) if e[0] == "attempt failed"]
    assert failed.startswith("attempt 1 failed (a retry is coming): transient: SMTPRecipients")
    assert "451" in failed and "Greylisted" in failed
    assert [event for event, _ in events(redis, submission_id)] == [
        "accepted",
        "enqueued",
        "started",
        "attempt failed",
        "started",
        "sent",
    ]
    assert ("started", "attempt 2") in events(redis, submission_id)
    assert len(smtp_sink.messages) == 1


def test_the_journey_says_when_it_gave_up(app, run_jobs, smtp_sink, redis):
    smtp_sink.stop()
    [submission_id] = submit(app, email=ADA)

    run_jobs()  # the first try and both retries (RETRY_MAX=2)

    failures = [
        detail for event, detail in events(redis, submission_id) if event == "attempt failed"
    ]
    assert [detail.split(":")[0] for detail in failures] == [
        "attempt 1 failed (a retry is coming)",
        "attempt 2 failed (a retry is coming)",
        "attempt 3 failed (gave up, no retry left)",
    ]


def test_now_mode_journey_shows_the_delivery_inside_the_request(app, redis):
    app.config["WORKIT_DELIVERY"] = "now"
    [submission_id] = submit(app, email=ADA)

    assert [event for event, _ in events(redis, submission_id)] == [
        "accepted",
        "delivering in the request",
        "started",
        "sent",
    ]
    assert submissions.load(redis, submission_id).delivery == "now"
