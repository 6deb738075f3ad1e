"""Past one Redis: a primary, two replicas and three sentinels of the test's own
(harness/sentinel.py), with every part of Work-It on the redis+sentinel:// URL.

What must hold when the primary dies: the web answers 202 or 503, nothing else;
every submission that got a 202 is still there after the failover and is sent; the
workers and the cron scheduler carry on against the new primary without a restart.
And the two guards that make it so: a 202 only once a replica has the submission
(Redis's WAIT, app/ops/replication.py), and a primary that refuses writes it cannot
replicate (min-replicas-to-write).
"""

import os
import signal
import subprocess
import sys

import pytest

from app import ROOT, submissions
from app.errors import NO_REPLICAS, NOT_REPLICATED
from app.ops.redis_connection import close, connect, topology
from bench.failover_drill import drill
from harness.polling import wait_for
from harness.sentinel import MIN_REPLICAS_MAX_LAG
from harness.worker_processes import process_env

pytestmark = pytest.mark.slow


@pytest.fixture
def app_config(app_config, failover_set):
    return {**app_config, "REDIS_URL": failover_set.url, "REDIS_WAIT_REPLICAS": 1}


@pytest.fixture
def primary(app):
    """A client of whichever node is primary now, found through the sentinels."""
    client = connect(app.config["REDIS_URL"], socket_connect_timeout=1, socket_timeout=2)
    try:
        yield client
    finally:
        close(client)  # and its clients of the sentinels


def post(client, n: int):
    return client.post("/api/thoughts", json={"email": f"user{n}@example.com", "thought": f"t{n}"})


@pytest.mark.timeout(300)
def test_a_failover_under_load_loses_no_accepted_thought():
    """`make failover-drill`, one round: the web under gunicorn, the worker pool and
    two cron schedulers, all real processes, while a thread POSTs; the primary is
    SIGKILLed mid-stream and rejoins once a replica is promoted."""
    report = drill(rounds=1)
    print("\n" + "\n".join(report.lines()))

    assert set(report.answers) <= {202, 503}, report.answers  # never a 500, never no answer
    assert report.answers[202] > 0 and report.rounds[0].to_first_202 > 0
    assert report.lost == []
    assert report.stuck == []  # every accepted thought sent, retries included
    assert report.scheduler_leads
    # The lock reaches a replica before the send, as the `sent` flag does after it
    # (jobs/gif_sender.py): a promoted replica never lets a second run in.
    assert report.duplicates == 0


def test_a_thought_is_refused_not_accepted_when_no_replica_acknowledges_it(
    client, app, failover_set, primary
):
    """Replicas frozen (SIGSTOP): the primary still takes the write (its replicas are
    not late enough yet for min-replicas-to-write), but WAIT times out: 503, and the
    submission is cancelled so its job sends nothing. Without the WAIT this is a 202
    for a thought the next failover would lose (the test after this one)."""
    replicas = [node for node in failover_set.nodes if node.port != failover_set.primary_port()]
    for node in replicas:
        os.kill(node.pid, signal.SIGSTOP)
    try:
        response = post(client, 1)
    finally:
        for node in replicas:
            os.kill(node.pid, signal.SIGCONT)
    assert response.status_code == 503, response.get_json()
    assert response.get_json() == {"error": NOT_REPLICATED}
    assert response.headers["Retry-After"]
    [cancelled] = [
        submissions.load(primary, key.decode().split(":")[-1])
        for key in primary.scan_iter("workit:submission:*")
        if key.count(b":") == 2
    ]
    assert cancelled.status == "cancelled"


def test_a_primary_with_no_replica_in_reach_refuses_writes(client, failover_set, primary):
    """min-replicas-to-write: replicas frozen past the lag, and the primary takes no
    write at all: nothing is stored that a failover could lose."""
    replicas = [node for node in failover_set.nodes if node.port != failover_set.primary_port()]
    for node in replicas:
        os.kill(node.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: _refuses_writes(primary), MIN_REPLICAS_MAX_LAG + 10, "NOREPLICAS")
        response = post(client, 1)
    finally:
        for node in replicas:
            os.kill(node.pid, signal.SIGCONT)
    assert response.status_code == 503, response.get_json()
    assert response.get_json() == {"error": NO_REPLICAS}
    assert not list(primary.scan_iter("workit:submission:*"))


def _refuses_writes(redis) -> bool:
    try:
        redis.set("workit:test:probe", "1")
    except Exception as exc:
        return "NOREPLICAS" in str(exc)
    return False


def test_healthz_and_doctor_show_the_topology(client, failover_set, app_config):
    body = client.get("/healthz").get_json()
    shape = body["redis_topology"]
    assert shape["primary"] == f"127.0.0.1:{failover_set.primary_port()}"
    assert len(shape["replicas"]) == 2 and all(r["state"] == "online" for r in shape["replicas"])
    assert shape["sentinels"] == {"configured": 3, "answering": 3, "known": 3}
    assert shape["quorum"] == 2
    doctor = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "doctor"],
        cwd=ROOT,
        env=process_env({**app_config, "MAILCATCHER_URL": ""}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert f"primary 127.0.0.1:{failover_set.primary_port()}" in doctor.stdout, doctor.stdout
    assert "2 replicas" in doctor.stdout and "3 of 3 sentinels" in doctor.stdout


def test_topology_names_the_new_primary_after_a_failover(failover_set, primary):
    old = failover_set.kill_primary()
    new_port = failover_set.wait_for_new_primary(old.port)
    wait_for(lambda: _primary_of(primary) == f"127.0.0.1:{new_port}", 30, "the new primary")


def _primary_of(redis) -> str | None:
    try:
        return topology(redis)["primary"]
    except Exception:
        return None
