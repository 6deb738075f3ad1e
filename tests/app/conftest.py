"""Records of live RQ processes, made by RQ's own classes against the test Redis:
what /healthz and `flask doctor` read, without running a worker loop."""

import pytest
from rq import Queue, Worker
from rq.cron import CronScheduler
from rq.scheduler import RQScheduler

from jobs import QUEUES


@pytest.fixture
def registered_worker(redis) -> Worker:
    """A worker on every queue, registered as a live one is (its heartbeat key)."""
    worker = Worker([Queue(name, connection=redis) for name in QUEUES], connection=redis)
    worker.register_birth()
    yield worker
    worker.register_death()


@pytest.fixture
def schedulers(redis) -> tuple[RQScheduler, CronScheduler]:
    """RQ's scheduler holding every queue's lock (as a `--with-scheduler` worker's
    does), and a registered `rq cron` scheduler."""
    scheduler = RQScheduler(list(QUEUES), connection=redis)
    assert scheduler.acquire_locks() == set(QUEUES)
    cron = CronScheduler(connection=redis)
    cron.register_birth()
    yield scheduler, cron
    scheduler.release_locks()
