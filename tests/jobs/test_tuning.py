"""AppSimpleWorker's bookkeeping: fewer round trips per job, and the worker still alive
and still obedient to `rq suspend`."""

import pytest
from redis.connection import AbstractConnection
from rq import Queue
from rq.exceptions import StopRequested
from rq.suspension import suspend

import jobs.worker
from harness.submissions import submit
from jobs.worker import HEARTBEAT_EVERY_SECONDS, AppJob, AppSimpleWorker

# RQ's own bookkeeping took 24 round trips per job here (five worker heartbeats of two
# each among them); the job's share is 4 (lock; load and start; renew; sent and release).
MOST_ROUND_TRIPS_PER_JOB = 13


@pytest.fixture
def worker(app, redis, monkeypatch):
    """An AppSimpleWorker in this process, on the test's app."""
    monkeypatch.setattr(jobs.worker, "_app", app)
    queues = [Queue("mailers", connection=redis, job_class=AppJob)]
    return AppSimpleWorker(queues, connection=redis, job_class=AppJob)


@pytest.fixture
def round_trips(monkeypatch):
    """Counts what is sent to Redis: one call per round trip (a pipeline is one)."""
    sent = []
    original = AbstractConnection.send_packed_command

    def counting(connection, command, check_health=True):
        sent.append(command)
        return original(connection, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return sent


class Clock:
    def __init__(self, monkeypatch):
        self.now = 1000.0
        monkeypatch.setattr(jobs.worker.time, "monotonic", lambda: self.now)


def burst(app, redis, round_trips, jobs: int) -> int:
    """Round trips a fresh worker makes to send ``jobs`` emails, start and stop included."""
    submit(app, jobs)
    queues = [Queue("mailers", connection=redis, job_class=AppJob)]
    worker = AppSimpleWorker(queues, connection=redis, job_class=AppJob)
    before = len(round_trips)
    worker.work(burst=True)
    return len(round_trips) - before


def test_a_job_costs_at_most_13_round_trips(app, redis, smtp_sink, round_trips, monkeypatch):
    monkeypatch.setattr(jobs.worker, "_app", app)
    few = burst(app, redis, round_trips, 10)
    many = burst(app, redis, round_trips, 30)

    per_job = (many - few) / 20  # the worker's start and stop cancel out
    assert len(smtp_sink.messages) == 40
    assert per_job <= MOST_ROUND_TRIPS_PER_JOB, per_job


def test_the_worker_beats_once_per_interval_and_stays_registered(
    worker, redis, round_trips, monkeypatch
):
    clock = Clock(monkeypatch)
    worker.register_birth()
    worker.heartbeat()
    first = redis.hget(worker.key, "last_heartbeat")
    assert redis.ttl(worker.key) > 60

    sent = len(round_trips)
    worker.heartbeat()
    clock.now += HEARTBEAT_EVERY_SECONDS - 1
    worker.heartbeat()
    assert len(round_trips) == sent  # beats within the interval are skipped

    clock.now += 1
    redis.expire(worker.key, 10)
    sent = len(round_trips)
    worker.heartbeat()
    assert len(round_trips) == sent + 1  # one round trip, not two
    assert redis.ttl(worker.key) > 60
    assert redis.hget(worker.key, "last_heartbeat") >= first


def test_rq_suspend_stops_the_worker_within_a_second(worker, redis, monkeypatch):
    clock = Clock(monkeypatch)
    worker.check_for_suspension(burst=True)
    suspend(redis)

    worker.check_for_suspension(burst=True)  # checked a moment ago: not yet
    clock.now += 1
    with pytest.raises(StopRequested):
        worker.check_for_suspension(burst=True)
