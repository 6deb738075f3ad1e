"""jobs/runtime/tuning.py: fewer round trips per job, the worker still alive, and a loud failure
when RQ changes a member the tricks rely on."""

import pytest
import rq
import rq.worker.base
from redis.client import Pipeline
from redis.connection import AbstractConnection
from rq import Queue
from rq.job import Job, JobStatus
from rq.suspension import resume, suspend
from rq.worker.base import BaseWorker, WorkerStatus

import jobs.runtime.tuning
import jobs.worker
from harness.pinned import assert_unchanged
from harness.submissions import submit
from jobs.runtime.tuning import (
    CALLED,
    HEARTBEAT_EVERY_SECONDS,
    OVERRIDDEN,
    SUSPENSION_CHECK_EVERY_SECONDS,
    TunedWorker,
)
from jobs.runtime.workers import PoolWorker
from jobs.worker import AppJob

# The plain worker makes 23 round trips per job (RQ's worker heartbeat, two each, among
# them several times); the job's share is 5 (lock; load and start; renew; sent; release).
# Tuned, the heartbeat goes at most every HEARTBEAT_EVERY_SECONDS (about 16.5 with that
# alone), a job's start and end are one transaction each (about 11.5), and the suspension
# check and the job's lone heartbeat after it ran are gone (about 9.5).
MOST_ROUND_TRIPS_PER_JOB = 10
# The RQ this was measured and tested on (pyproject.toml pins its minor version).
TESTED_RQ = "2.12"


@pytest.fixture
def worker(app, redis, monkeypatch):
    """A TunedWorker in this process, on the test's app."""
    monkeypatch.setattr(jobs.worker, "_app", app)
    queues = [Queue("mailers", connection=redis, job_class=AppJob)]
    return TunedWorker(queues, connection=redis, job_class=AppJob)


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
        monkeypatch.setattr(jobs.runtime.tuning.time, "monotonic", lambda: self.now)


def burst(app, redis, round_trips, jobs: int, worker_class=TunedWorker) -> int:
    """Round trips a fresh worker makes to send ``jobs`` emails, start and stop included."""
    submit(app, jobs)
    queues = [Queue("mailers", connection=redis, job_class=AppJob)]
    worker = worker_class(queues, connection=redis, job_class=AppJob)
    before = len(round_trips)
    worker.work(burst=True)
    return len(round_trips) - before


def per_job_round_trips(app, redis, round_trips, worker_class) -> float:
    few = burst(app, redis, round_trips, 10, worker_class)
    many = burst(app, redis, round_trips, 30, worker_class)
    return (many - few) / 20  # the worker's start and stop cancel out


def test_a_tuned_job_costs_at_most_10_round_trips(app, redis, smtp_sink, round_trips, monkeypatch):
    monkeypatch.setattr(jobs.worker, "_app", app)
    tuned = per_job_round_trips(app, redis, round_trips, TunedWorker)
    plain = per_job_round_trips(app, redis, round_trips, PoolWorker)

    assert len(smtp_sink.messages) == 80
    assert tuned <= MOST_ROUND_TRIPS_PER_JOB < plain, (tuned, plain)


def test_rq_is_the_minor_version_the_tricks_were_tested_on():
    assert rq.__version__.startswith(TESTED_RQ + "."), (
        f"RQ {rq.__version__}: jobs/runtime/tuning.py overrides {sorted(OVERRIDDEN)} as RQ "
        f"{TESTED_RQ} has them; check each against the new RQ, then update TESTED_RQ"
    )


@pytest.mark.parametrize("member", sorted(OVERRIDDEN))
def test_every_rq_member_the_tricks_touch_is_still_there(member, worker):
    """A renamed method would leave its override unused; a changed signature would
    break it; a renamed attribute would break LeanBookkeeping's state."""
    parameters = OVERRIDDEN[member]
    if parameters is None:
        assert hasattr(worker, member), f"RQ's worker no longer has {member}"
        return
    assert_unchanged(BaseWorker, member, parameters)


@pytest.mark.parametrize("member", sorted(CALLED))
def test_every_rq_job_member_the_tricks_call_is_still_there(member):
    assert_unchanged(Job, member, CALLED[member])


def test_a_lean_job_leaves_every_record_rq_leaves(app, redis, smtp_sink, monkeypatch, caplog):
    """What the dashboard, `rq info` and the pool read: the job finished with its result,
    in the finished registry; nothing left started or executing; the worker's counts
    and state; and RQ's log lines. The same as RQ's own bookkeeping leaves."""
    monkeypatch.setattr(jobs.worker, "_app", app)
    records = {}
    for worker_class in (TunedWorker, PoolWorker):
        redis.flushdb()
        caplog.clear()
        submit(app, 3)
        queue = Queue("mailers", connection=redis, job_class=AppJob)
        worker = worker_class([queue], connection=redis, job_class=AppJob)
        worker.work(burst=True)
        worker.refresh()
        finished = queue.finished_job_registry.get_job_ids()
        jobs_done = [AppJob.fetch(i, connection=redis) for i in finished]
        records[worker_class.__name__] = {
            "finished": len(finished),
            "statuses": {job.get_status() for job in jobs_done},
            "results": {job.latest_result().type.name for job in jobs_done},
            "started": queue.started_job_registry.count,
            "executions": len(redis.keys("rq:execution:*")),
            "intermediate": redis.llen(queue.intermediate_queue_key),
            "worker": (worker.successful_job_count, worker.failed_job_count),
            "worker working time": worker.total_working_time > 0,
            "worker's current job": worker.get_current_job_id(),
            "worker's state": redis.hget(worker.key, "state"),
            "log lines": sorted(r.msg for r in caplog.records if r.name == "rq.worker"),
        }
    assert records["TunedWorker"] == records["PoolWorker"]
    assert records["TunedWorker"]["finished"] == 3
    assert records["TunedWorker"]["statuses"] == {JobStatus.FINISHED}
    assert len(smtp_sink.messages) == 6


def test_a_lean_job_still_enqueues_its_dependents(app, redis, worker):
    queue = Queue("mailers", connection=redis)
    first = queue.enqueue(len, "abc")
    second = queue.enqueue(len, "de", depends_on=first)
    assert second.get_status() == JobStatus.DEFERRED

    worker.work(burst=True)

    assert (first.get_status(), first.return_value()) == (JobStatus.FINISHED, 3)
    assert (second.get_status(), second.return_value()) == (JobStatus.FINISHED, 2)


def test_a_stop_signal_during_a_jobs_end_waits_for_it(app, redis, worker, monkeypatch):
    """RQ's warm shutdown stops a worker at once unless its state says busy: the
    job's end transaction must run as busy, or a stop signal arriving then raises
    StopRequested inside it and the job ends as failed (seen once, in make dev)."""
    seen = []
    original = Pipeline.execute

    def execute(pipeline, *args, **kwargs):
        if any(command[0] == "SMEMBERS" for command, _ in pipeline.command_stack):
            seen.append(worker.get_state())
        return original(pipeline, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "execute", execute)
    job = Queue("mailers", connection=redis).enqueue(len, "abc")

    worker.work(burst=True)

    assert seen == [WorkerStatus.BUSY]
    assert job.get_status() == JobStatus.FINISHED


def test_a_job_performed_on_its_own_ends_as_with_rq(app, redis, worker):
    """perform_job without execute_job (no execution record), as RQ allows."""
    queue = Queue("mailers", connection=redis)
    job = queue.enqueue(len, "abc")

    assert worker.perform_job(job, queue)

    assert (job.get_status(), job.return_value()) == (JobStatus.FINISHED, 3)
    assert job.id in queue.finished_job_registry


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


def test_a_suspended_worker_takes_no_job(app, redis, worker):
    """`rq suspend` is looked for once a second, not before every job: a worker that
    starts while suspended still takes nothing."""
    suspend(redis)
    job = Queue("mailers", connection=redis).enqueue(len, "abc")

    worker.work(burst=True)

    assert job.get_status() == JobStatus.QUEUED
    resume(redis)
    worker.work(burst=True)
    assert job.get_status() == JobStatus.FINISHED


def test_the_suspension_check_goes_once_per_interval(worker, redis, monkeypatch):
    clock = Clock(monkeypatch)
    checks = []
    monkeypatch.setattr(rq.worker.base, "is_suspended", lambda *args: checks.append(args))

    for _ in range(3):
        worker.check_for_suspension(burst=False)
    assert len(checks) == 1
    clock.now += SUSPENSION_CHECK_EVERY_SECONDS
    worker.check_for_suspension(burst=False)
    assert len(checks) == 2


def test_a_jobs_heartbeat_after_it_ran_is_written_with_its_end(app, redis, worker):
    job = Queue("mailers", connection=redis).enqueue(len, "abc")

    worker.work(burst=True)

    job = Job.fetch(job.id, connection=redis)
    assert job.last_heartbeat >= job.ended_at
