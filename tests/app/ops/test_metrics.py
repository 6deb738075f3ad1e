"""/metrics: what Prometheus reads, checked against what really happened."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import keys, submissions
from app.ops import replication
from harness.submissions import submit
from jobs.gif_sender import enqueue_gif_email

ADA = "ada@example.com"


def scrape(client, **headers) -> dict[tuple, float]:
    """Every sample: (name, frozenset of labels) -> value."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.status_code
    assert response.content_type.startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_queue_depth_and_the_age_of_the_oldest_waiting_job(app, client, redis):
    assert value(scrape(client), "workit_queue_latency_seconds", queue="mailers") == 0
    first, *_ = submit(app, count=3)
    job_id = submissions.load(redis, first).job_id
    ninety_seconds_ago = datetime.now(UTC) - timedelta(seconds=90)
    redis.hset(
        f"rq:job:{job_id}", "enqueued_at", ninety_seconds_ago.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    )

    samples = scrape(client)

    assert value(samples, "workit_redis_up") == 1
    assert value(samples, "workit_queue_depth", queue="mailers") == 3
    assert 90 <= value(samples, "workit_queue_latency_seconds", queue="mailers") < 100
    assert value(samples, "workit_queue_depth", queue="default") == 0
    assert value(samples, "workit_queue_latency_seconds", queue="default") == 0


def test_submissions_are_counted_by_delivery(make_app, client, smtp_sink):
    for _ in range(2):
        assert client.post("/api/thoughts", json={"email": ADA, "thought": "a"}).status_code == 202
    due = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = {"email": ADA, "thought": "b", "send_at": due}
    assert client.post("/api/thoughts", json=body).status_code == 202
    now_client = make_app(WORKIT_DELIVERY="now").test_client()
    assert now_client.post("/api/thoughts", json={"email": ADA, "thought": "c"}).status_code in (
        200,
        202,
    )

    samples = scrape(client)

    assert value(samples, "workit_submissions_total", delivery="later") == 2
    assert value(samples, "workit_submissions_total", delivery="scheduled") == 1
    assert value(samples, "workit_submissions_total", delivery="now") == 1
    assert value(samples, "workit_scheduled_jobs") == 1


def test_runs_are_counted_by_outcome_with_their_duration_and_wait(app, client, run_jobs, redis):
    ids = submit(app, count=2)
    run_jobs()
    with app.app_context():
        enqueue_gif_email(ids[0])  # a duplicate
    run_jobs()

    samples = scrape(client)

    assert value(samples, "workit_jobs_total", queue="mailers", outcome="sent") == 2
    assert value(samples, "workit_jobs_total", queue="mailers", outcome="already_sent") == 1
    for name in ("workit_job_duration_seconds", "workit_job_wait_seconds"):
        assert value(samples, f"{name}_count", queue="mailers") == 3
        assert value(samples, f"{name}_bucket", queue="mailers", le="+Inf") == 3
        assert value(samples, f"{name}_sum", queue="mailers") > 0


def test_failed_runs_dead_jobs_and_red_flags(app, client, run_jobs, smtp_sink, redis):
    smtp_sink.rcpt_replies[ADA] = ["451 4.7.1 Try again later"] * 3  # RETRY_MAX is 2
    submit(app, email=ADA)
    run_jobs()

    samples = scrape(client)

    assert value(samples, "workit_jobs_total", queue="mailers", outcome="failed_retrying") == 2
    assert value(samples, "workit_jobs_total", queue="mailers", outcome="dead") == 1
    assert value(samples, "workit_failed_jobs", queue="mailers") == 1
    assert value(samples, "workit_red_flags_total", kind="dead_job") == 1


def test_a_run_that_finds_the_lock_held_is_busy(app, client, run_jobs, redis, monkeypatch):
    monkeypatch.setattr("jobs.gif_sender.LOCK_WAIT_SECONDS", 0.1)
    app.config["RETRY_MAX"] = 0
    [submission_id] = submit(app)
    held = redis.lock(keys.lock(submission_id), timeout=30)
    assert held.acquire()
    run_jobs()

    samples = scrape(client)

    assert value(samples, "workit_jobs_total", queue="mailers", outcome="busy") == 1
    assert value(samples, "workit_jobs_total", queue="mailers", outcome="sent") is None


def test_requests_are_counted_by_endpoint_and_status(client):
    client.get("/")
    client.get("/no-such-page")
    client.post("/api/thoughts", json={"email": ADA, "thought": "hi"})
    samples = scrape(client)
    before = value(samples, "workit_http_requests_total", endpoint="main.new_thought", status="200")

    client.get("/")
    samples = scrape(client)

    after = value(samples, "workit_http_requests_total", endpoint="main.new_thought", status="200")
    assert after == before + 1
    assert value(samples, "workit_http_requests_total", endpoint="none", status="404") >= 1
    assert (
        value(samples, "workit_http_requests_total", endpoint="api.create_thought", status="202")
        >= 1
    )
    assert (
        value(samples, "workit_http_request_duration_seconds_count", endpoint="main.new_thought")
        >= 2
    )


def test_with_redis_down_the_scrape_says_so(make_app):
    client = make_app(REDIS_URL="redis://127.0.0.1:1/0").test_client()
    samples = scrape(client)
    assert value(samples, "workit_redis_up") == 0
    assert value(samples, "workit_queue_depth", queue="mailers") is None


@pytest.mark.parametrize("password", ["", "s3cret"])
def test_metrics_sign_in_as_the_dashboard_does(make_app, password):
    client = make_app(DASHBOARD_PASSWORD=password).test_client()
    answer = client.get("/metrics")
    if not password:
        assert answer.status_code == 200
        return
    assert answer.status_code == 401
    wrong = base64.b64encode(b"admin:wrong").decode()
    assert client.get("/metrics", headers={"Authorization": f"Basic {wrong}"}).status_code == 401
    right = base64.b64encode(f"admin:{password}".encode()).decode()
    assert client.get("/metrics", headers={"Authorization": f"Basic {right}"}).status_code == 200


def test_metrics_can_be_turned_off(make_app):
    assert make_app(METRICS_ENABLED=False).test_client().get("/metrics").status_code == 404


def test_with_a_password_and_redis_down_the_scrape_still_says_so(make_app):
    """The sign-in's wrong-password counter lives in Redis: it must not turn the
    scrape into a 503, or Prometheus could never see workit_redis_up 0."""
    client = make_app(REDIS_URL="redis://127.0.0.1:1/0", DASHBOARD_PASSWORD="s3cret").test_client()
    right = base64.b64encode(b"admin:s3cret").decode()
    samples = scrape(client, Authorization=f"Basic {right}")
    assert value(samples, "workit_redis_up") == 0
    wrong = base64.b64encode(b"admin:wrong").decode()
    assert client.get("/metrics", headers={"Authorization": f"Basic {wrong}"}).status_code == 401


def test_a_sent_run_is_counted_once_when_its_sent_write_is_retried(
    app, client, run_jobs, monkeypatch
):
    """The `sent` write is retried until a replica has it (jobs/gif_sender.py); the
    transaction that already went through must not count the run again."""
    real = replication.wait_for_replicas
    calls = []

    def no_replica_for_the_first_sent_write(redis, config):
        calls.append(1)
        if len(calls) == 2:  # the first was the submission's own, in accept()
            raise replication.NotReplicated(0, 1, 1000)
        return real(redis, config)

    monkeypatch.setattr(replication, "wait_for_replicas", no_replica_for_the_first_sent_write)
    monkeypatch.setattr("app.ops.bookkeeping.SENT_WRITE_RETRY_SECONDS", (0.01,))
    submit(app)
    run_jobs()

    samples = scrape(client)
    assert len(calls) >= 3
    assert value(samples, "workit_jobs_total", queue="mailers", outcome="sent") == 1
