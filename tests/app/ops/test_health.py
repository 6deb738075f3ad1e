"""GET /healthz against a real Redis, with real RQ worker, scheduler and cron records."""

import pytest
from rq import Queue
from rq.scheduler import RQScheduler

from app.rate_limits import limiter
from harness.ports import free_port
from jobs import MAILERS


@pytest.fixture
def default_limit(make_app):
    """Apps with a default limit on every view. Flask-Limiter keeps the first
    RATELIMIT_DEFAULT it sees on its one module-level limiter: put back what was there,
    so that no later test inherits the limit."""
    saved = limiter.limit_manager._default_limits
    limiter.limit_manager.set_default_limits([])
    try:
        yield lambda limit, **changes: make_app(RATELIMIT_DEFAULT=limit, **changes)
    finally:
        limiter.limit_manager.set_default_limits(saved)


def test_healthy_with_redis_and_a_live_worker(client, redis, registered_worker):
    Queue(MAILERS, connection=redis).enqueue("os.getcwd")

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "reason": None,
        "redis": True,
        "queues": {"mailers": 1, "default": 0, "maintenance": 0},
        "workers": 1,
        "scheduler": False,
        "cron": 0,
        "redis_topology": {"primary": redis_address(redis), "role": "master", "replicas": []},
    }
    assert response.headers["Cache-Control"] == "no-store"


def test_no_worker_is_503_with_a_reason(client, redis):
    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.get_json()
    assert (body["status"], body["redis"], body["workers"]) == ("unavailable", True, 0)
    assert body["reason"] == "No RQ worker is running: thoughts would be queued but never sent."


def test_a_worker_whose_heartbeat_expired_is_not_live(client, redis, registered_worker):
    redis.delete(registered_worker.key)  # what its TTL does once a killed worker stops renewing it

    assert client.get("/healthz").status_code == 503


def test_redis_down_is_503_not_500(default_limit):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    # a default limit would make Flask-Limiter ask its (down) Redis first, unless exempt
    client = default_limit("100 per minute", REDIS_URL=closed).test_client()

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.get_json() == {
        "status": "unavailable",
        "reason": "Redis does not answer: thoughts can be neither stored nor queued.",
        "redis": False,
        "queues": None,
        "workers": None,
        "scheduler": None,
        "cron": None,
        "redis_topology": None,
    }


def test_the_schedulers_are_seen_while_they_hold_their_records(
    client, redis, registered_worker, schedulers
):
    scheduler, cron = schedulers

    body = client.get("/healthz").get_json()
    assert (body["scheduler"], body["cron"]) == (True, 1)

    scheduler.release_locks()
    redis.delete(cron.key)  # its hash expires two minutes after its last heartbeat
    body = client.get("/healthz").get_json()
    assert (body["scheduler"], body["cron"]) == (False, 0)


def test_one_queue_without_a_scheduler_is_not_a_live_scheduler(client, redis, registered_worker):
    RQScheduler([MAILERS, "default"], connection=redis).acquire_locks()

    assert client.get("/healthz").get_json()["scheduler"] is False


def test_never_rate_limited_and_needs_no_password(default_limit, redis, registered_worker):
    app = default_limit("2 per minute", DASHBOARD_PASSWORD="s3cret")
    client = app.test_client()

    assert [client.get("/healthz").status_code for _ in range(5)] == [200] * 5
    assert [client.get("/").status_code for _ in range(3)] == [200, 200, 429]  # the limit bites


def redis_address(redis) -> str:
    kwargs = redis.connection_pool.connection_kwargs
    return f"{kwargs['host']}:{kwargs['port']}"
