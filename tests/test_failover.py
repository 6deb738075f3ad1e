"""Past one Redis: a primary, two replicas and three sentinels of the test's own
(harness/sentinel.py), with every part of Work-It on the redis+sentinel:// URL.

What must hold when the primary dies: the web answers 202 or 503, nothing else;
every submission that got a 202 is still there after the failover and is sent; the
workers and the cron scheduler carry on against the new primary without a restart.
And the two guards that make it so: a 202 only once a replica has the submission
(Redis's WAIT, app/replication.py), and a primary that refuses writes it cannot
replicate (min-replicas-to-write).
"""

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import pytest

from app import ROOT, submissions
from app.errors import NO_REPLICAS, NOT_REPLICATED
from app.redis_connection import connect, topology
from harness.polling import wait_for
from harness.sentinel import MIN_REPLICAS_MAX_LAG
from harness.worker_processes import WorkerProcesses, process_env

pytestmark = pytest.mark.slow

# The POSTs go on this long after the kill: the election (about 2 s here) and more.
AFTER_KILL_SECONDS = 8
BEFORE_KILL_SECONDS = 2
PAUSE_BETWEEN_POSTS = 0.05


@pytest.fixture
def app_config(app_config, failover_set):
    return {
        **app_config,
        "REDIS_URL": failover_set.url,
        "REDIS_WAIT_REPLICAS": 1,
        "REDIS_WAIT_TIMEOUT_MS": 1000,
        "RATELIMIT_PER_CLIENT": "100000 per minute",  # the limiter's counts go there too
        "RETRY_BASE_SECONDS": 1,
        "RETRY_MAX": 5,
    }


@pytest.fixture
def primary(app):
    """A client of whichever node is primary now, found through the sentinels."""
    client = connect(app.config["REDIS_URL"], socket_connect_timeout=1, socket_timeout=2)
    try:
        yield client
    finally:
        client.close()


def post(client, n: int):
    return client.post("/api/thoughts", json={"email": f"user{n}@example.com", "thought": f"t{n}"})


@dataclass
class Load:
    """POSTs to the API from a thread, one every PAUSE_BETWEEN_POSTS, as people would."""

    app: object
    answers: list = field(default_factory=list)  # (time, status, id or None)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        client = self.app.test_client()
        n = 0
        while not self.stop.is_set():
            response = post(client, n)
            body = response.get_json(silent=True) or {}
            self.answers.append((time.monotonic(), response.status_code, body.get("id")))
            n += 1
            time.sleep(PAUSE_BETWEEN_POSTS)

    def accepted(self) -> list[str]:
        return [sid for _, status, sid in self.answers if status == 202]


def test_a_failover_under_load_loses_no_accepted_thought(
    app, app_config, failover_set, primary, smtp_sink
):
    workers = WorkerProcesses(process_env(app_config), workers=2)
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "jobs.scheduler"],
        cwd=ROOT,
        env=process_env(app_config),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    load = Load(app)
    thread = threading.Thread(target=load.run, daemon=True)
    try:
        workers.start(1)
        thread.start()
        time.sleep(BEFORE_KILL_SECONDS)
        wait_for(lambda: smtp_sink.messages, 30, "a first email before the kill")
        killed_at = time.monotonic()
        old = failover_set.kill_primary()
        failover_set.wait_for_new_primary(old.port)
        time.sleep(AFTER_KILL_SECONDS)
        load.stop.set()
        thread.join(timeout=30)

        accepted = load.accepted()
        statuses = collections.Counter(status for _, status, _ in load.answers)
        assert set(statuses) <= {202, 503}, statuses
        after_kill = [t for t, status, _ in load.answers if status == 202 and t > killed_at]
        assert after_kill, f"no 202 in {AFTER_KILL_SECONDS} s after the kill: {statuses}"

        def every_accepted_one_sent() -> bool:
            return all(_status(primary, sid) == "sent" for sid in accepted)

        wait_for(every_accepted_one_sent, 120, "every accepted thought to be sent")
        emails = collections.Counter(m["To"] for m in smtp_sink.messages)
        for sid in accepted:
            assert submissions.load(primary, sid) is not None, f"{sid} was lost"
        addresses = {submissions.load(primary, sid).email for sid in accepted}
        assert all(emails[address] >= 1 for address in addresses)
        duplicates = sum(count - 1 for count in emails.values())
        print(
            f"\nfailover: {len(load.answers)} POSTs, {len(accepted)} accepted, 0 lost, "
            f"{duplicates} duplicate emails; first 202 {after_kill[0] - killed_at:.1f} s "
            f"after the kill; answers {dict(statuses)}"
        )
        assert duplicates <= 1, f"{duplicates} duplicates: more than the stated window"
        # The scheduler followed too: it still leads, on the new primary.
        wait_for(lambda: _cron_leaders(primary) == 1, 30, "one cron scheduler to lead")
    finally:
        load.stop.set()
        workers.stop_all()
        scheduler.send_signal(signal.SIGTERM)
        scheduler.wait(timeout=30)


def _status(redis, submission_id: str) -> str | None:
    try:
        found = submissions.load(redis, submission_id)
    except Exception:  # the election may still be on
        return None
    return found.status if found else None


def _cron_leaders(redis) -> int:
    return sum(1 for _ in redis.scan_iter("workit:cron:leader*"))


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
