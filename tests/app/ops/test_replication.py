"""WAIT on one Redis: nothing to wait for by default; with a replica asked for and
none there, a submission is refused and cancelled, never accepted (app/ops/replication.py).
The same with real replicas and a real failover: tests/test_failover.py."""

import pytest

from app import keys, submissions
from app.errors import NOT_REPLICATED
from app.ops.replication import NotReplicated, wait_for_replicas


def test_no_replica_asked_for_sends_nothing_to_redis(redis):
    assert wait_for_replicas(redis, {"REDIS_WAIT_REPLICAS": 0}) == 0
    assert not redis.exists(keys.REPLICATION_PROBE)


def test_a_replica_asked_for_that_is_not_there_raises(redis):
    config = {"REDIS_WAIT_REPLICAS": 1, "REDIS_WAIT_TIMEOUT_MS": 20}
    with pytest.raises(NotReplicated, match="0 of 1 replica"):
        wait_for_replicas(redis, config)


def test_a_thought_no_replica_has_is_refused_with_503_and_cancelled(make_app, redis):
    client = make_app(REDIS_WAIT_REPLICAS=1, REDIS_WAIT_TIMEOUT_MS=20).test_client()

    response = client.post("/api/thoughts", json={"email": "ada@example.com", "thought": "hi"})

    assert response.status_code == 503
    assert response.get_json() == {"error": NOT_REPLICATED}
    assert response.headers["Retry-After"]
    [key] = [k for k in redis.scan_iter("workit:submission:*") if k.count(b":") == 2]
    cancelled = submissions.load(redis, key.decode().rsplit(":", 1)[1])
    assert cancelled.status == "cancelled"
    assert "no replica acknowledged it" in cancelled.last_error


def test_the_form_says_so_and_keeps_what_was_typed(make_app, redis, thought_form):
    thought_form.client = make_app(REDIS_WAIT_REPLICAS=1, REDIS_WAIT_TIMEOUT_MS=20).test_client()

    response = thought_form.submit(email="ada@example.com", thought="keep me")

    assert response.status_code == 503
    page = response.get_data(as_text=True)
    assert "could not confirm that your thought was stored safely" in page
    assert "keep me" in page
