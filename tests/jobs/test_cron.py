"""The Procfile's `scheduler` line (jobs/runtime/cron_scheduler.py, RQ's cron scheduler behind a
leader lock) enqueues the sweep, once however many schedulers run."""

import os
import signal
import subprocess
import time

import pytest
from honcho.environ import parse_procfile
from redis import Redis
from rq import Queue
from rq.cron import CronScheduler

from app import ROOT, keys
from harness.polling import wait_for
from harness.worker_processes import process_env
from jobs.runtime.cron_scheduler import LEADER_TTL_SECONDS, STANDBY_CHECK_SECONDS

pytestmark = pytest.mark.slow

COMMAND = parse_procfile((ROOT / "Procfile").read_text()).processes["scheduler"]


@pytest.fixture
def schedulers(app_config, redis):
    """Starts real scheduler processes with the Procfile's command; stops them all."""
    procs: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(
            COMMAND, shell=True, cwd=ROOT, env=process_env(app_config), start_new_session=True
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def sweeps(redis) -> list:
    return Queue("maintenance", connection=redis).get_jobs()


def test_the_scheduler_enqueues_the_sweeper_on_the_maintenance_queue(schedulers, redis):
    schedulers()
    wait_for(lambda: len(sweeps(redis)) >= 1, 60, "no sweep was enqueued")
    [job] = sweeps(redis)
    assert job.func_name == "jobs.sweeper.requeue_stuck_submissions"


def test_two_schedulers_enqueue_each_sweep_once_and_the_standby_takes_over(schedulers, redis):
    procs = [schedulers(), schedulers()]
    wait_for(lambda: len(CronScheduler.all(redis)) == 2, 60, "both schedulers to register")
    wait_for(lambda: len(sweeps(redis)) >= 1, 60, "no sweep was enqueued")
    time.sleep(STANDBY_CHECK_SECONDS + 1)  # the standby has looked at the lock since
    assert len(sweeps(redis)) == 1  # each would enqueue one at start without the lock

    leader = redis.get(keys.CRON_LEADER).decode()  # hostname:pid:suffix
    [lead] = [p for p in procs if f":{p.pid}:" in leader]
    os.killpg(lead.pid, signal.SIGTERM)  # a clean stop gives the lock up
    lead.wait(timeout=30)

    wait_for(lambda: len(sweeps(redis)) == 2, 60, "the standby never took over")
    assert redis.get(keys.CRON_LEADER).decode() != leader


def test_a_scheduler_lives_through_a_redis_outage(app_config, restartable_redis):
    """RQ's CronScheduler exits on the first Redis error; ours skips the beat and goes
    on (a restart, a failover). The outage outlasts a leader's beat, so one falls in it."""
    env = process_env({**app_config, "REDIS_URL": restartable_redis.url})
    proc = subprocess.Popen(COMMAND, shell=True, cwd=ROOT, env=env, start_new_session=True)
    try:
        with Redis.from_url(restartable_redis.url) as redis:
            wait_for(lambda: redis.exists(keys.CRON_LEADER), 60, "the scheduler to lead")
            restartable_redis.stop()
            time.sleep(LEADER_TTL_SECONDS / 3 + 2)
            restartable_redis.start()
            back = time.time()
            assert proc.poll() is None, "the scheduler exited during the outage"

            def beats_again() -> bool:
                return any(
                    s.last_heartbeat and s.last_heartbeat.timestamp() > back
                    for s in CronScheduler.all(redis, cleanup=False)
                )

            wait_for(beats_again, 60, "the scheduler to beat again after the outage")
            assert proc.poll() is None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
