"""Break real things and check that nothing accepted is lost: a worker killed
mid-job, Redis restarted, the mail server down for a while."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue, Worker
from rq.registry import StartedJobRegistry

from app import ROOT, submissions
from app.queues import QUEUES
from harness.devstack import redis_answers
from harness.polling import wait_for
from harness.ports import free_port
from harness.submissions import submit
from harness.worker_processes import WorkerProcesses, process_env
from jobs.sweeper import requeue_stuck_submissions

pytestmark = pytest.mark.slow


@pytest.fixture
def app_config(app_config):
    """Slow enough to kill a worker mid-send; short timeouts so the test stays short
    (job timeout 22 s, lock 27 s, stuck after 32 s)."""
    return {
        **app_config,
        "MAILER_DELAY_SECONDS": 2,
        "GIPHY_TIMEOUT_SECONDS": 0.5,
        "MAIL_TIMEOUT_SECONDS": 1,
        "RETRY_BASE_SECONDS": 1,
        "RETRY_MAX": 5,
    }


def idle(redis) -> bool:
    return all(w.get_state() == "idle" for w in Worker.all(connection=redis))


def status(redis, submission_id) -> str:
    return submissions.load(redis, submission_id).status


@pytest.mark.timeout(300)  # it waits for the sweeper's threshold, 32 s, on purpose
@pytest.mark.parametrize("when", ["in the mailer's delay", "in the SMTP session"])
def test_a_worker_killed_mid_job_still_delivers_once(app, rq_workers, smtp_sink, redis, when):
    rq_workers.start(1)
    if when == "in the SMTP session":
        # SIGKILL while the server holds the RCPT TO: before it has the message.
        smtp_sink.on_rcpt = lambda: (setattr(smtp_sink, "on_rcpt", None), rq_workers.kill(0))
    [submission_id] = submit(app)
    wait_for(lambda: status(redis, submission_id) == "sending", 30, "not picked up")
    if when == "in the mailer's delay":
        rq_workers.kill(0)  # SIGKILL to the worker and its work horse
    wait_for(lambda: not rq_workers.alive(), 30, "the worker to die")
    rq_workers.start(1)
    assert smtp_sink.messages == [] and status(redis, submission_id) == "sending"

    def swept() -> bool:
        with app.app_context():
            return requeue_stuck_submissions() == 1

    wait_for(swept, 90, "the sweeper never requeued the stuck submission")
    [message] = smtp_sink.wait_for(1)
    wait_for(lambda: status(redis, submission_id) == "sent", 30, "not sent")
    assert message["To"] == "user0@example.com"
    assert submissions.load(redis, submission_id).attempts == 2
    _every_late_path_runs(app, redis)
    assert len(smtp_sink.messages) == 1


def _every_late_path_runs(app, redis) -> None:
    """What could still send a second copy, run now rather than waited for: RQ finds
    the dead run's job abandoned (and retries it, if its callback lets it), and the
    sweeper looks again. Then wait until no job is left anywhere."""
    for name in ("mailers", "default"):
        StartedJobRegistry(name, connection=redis).cleanup(timestamp=time.time() + 3600)
    with app.app_context():
        assert requeue_stuck_submissions() == 0
    wait_for(lambda: idle(redis) and Queue("mailers", connection=redis).count == 0, 60, "idle")
    time.sleep(1)  # a retry scheduled now would be enqueued within the scheduler's second


class ProductRedis:
    """The Redis `make dev` runs: bin/redis (the Procfile's `redis`), started in a
    directory of the test's own, so the server runs with the product's settings and
    keeps its data in that directory's var/redis, as it would in a checkout."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.url = f"redis://127.0.0.1:{free_port()}/0"
        self.launcher: subprocess.Popen | None = None
        self.server_pid = 0

    def start(self) -> None:
        self.launcher = subprocess.Popen(
            [sys.executable, str(ROOT / "bin" / "redis")],
            cwd=self.cwd,
            env={**os.environ, "REDIS_URL": self.url},
            stdout=subprocess.DEVNULL,
        )
        wait_for(lambda: redis_answers(self.url), 30, "the redis-server bin/redis starts")
        with Redis.from_url(self.url) as client:
            self.server_pid = client.info("server")["process_id"]

    def crash(self) -> None:
        """SIGKILL to redis-server itself: no clean shutdown, no last flush. bin/redis
        exits with it, as it does when its server dies."""
        os.kill(self.server_pid, signal.SIGKILL)
        self.launcher.wait(timeout=30)

    def stop(self) -> None:
        if self.launcher is not None and self.launcher.poll() is None:
            self.launcher.send_signal(signal.SIGINT)  # Ctrl-C: it stops its server
            try:
                self.launcher.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.launcher.kill()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.server_pid, signal.SIGKILL)  # if its launcher could not stop it


@pytest.fixture
def product_redis(tmp_path):
    server = ProductRedis(tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_queued_work_survives_a_crash_of_the_redis_make_dev_runs(
    app_config, make_app, product_redis, smtp_sink
):
    """Every submission accepted before redis-server is killed is there when it comes
    back, with bin/redis's own settings: the append-only file, and no snapshot to fall
    back on. (That it is also synced before each answer, appendfsync always, matters
    for a power cut, which a test cannot make; tests/test_bin.py and
    tests/test_compose.py check that bin/redis and compose set it.)"""
    app = make_app(REDIS_URL=product_redis.url, MAILER_DELAY_SECONDS=0)
    ids = submit(app, count=10)

    product_redis.crash()
    product_redis.start()

    redis = app.extensions["redis"]
    assert redis.llen("rq:queue:mailers") == 10
    assert all(status(redis, i) == "queued" for i in ids)
    _drain_with_a_real_worker(app_config, product_redis.url, smtp_sink, expected=10)
    assert sorted(m["To"] for m in smtp_sink.messages) == sorted(
        f"user{n}@example.com" for n in range(10)
    )


def _drain_with_a_real_worker(app_config, url, smtp_sink, expected):
    settings = {**app_config, "REDIS_URL": url, "MAILER_DELAY_SECONDS": 0}
    with WorkerProcesses(process_env(settings)) as workers:
        workers.start(1)
        smtp_sink.wait_for(expected)
        time.sleep(0.5)  # room for a duplicate to show up, if there were one
        assert len(smtp_sink.messages) == expected


def test_a_worker_keeps_going_across_a_redis_restart(
    app_config, make_app, restartable_redis, smtp_sink
):
    settings = {**app_config, "REDIS_URL": restartable_redis.url, "MAILER_DELAY_SECONDS": 0}
    app = make_app(**settings)
    with WorkerProcesses(process_env(settings)) as workers:
        workers.start(1)
        first = submit(app, count=3)
        smtp_sink.wait_for(3)
        redis = app.extensions["redis"]
        # Restart while the worker is idle. (A restart in the middle of a job's
        # bookkeeping makes RQ 2.12's worker quit; the sweeper recovers that job.)
        wait_for(lambda: all(status(redis, i) == "sent" for i in first), 30, "first sent")
        wait_for(lambda: idle(redis), 30, "the worker to be idle")

        restartable_redis.kill()  # SIGKILL, as a crash
        restartable_redis.start()
        second = submit(app, count=3)

        smtp_sink.wait_for(6, timeout=60)
        wait_for(
            lambda: all(status(redis, i) == "sent" for i in first + second), 30, "not all sent"
        )
        assert len(smtp_sink.messages) == 6


def test_delayed_jobs_move_again_after_redis_was_down_for_a_while(
    app_config, restartable_redis, smtp_sink
):
    """A worker's RQ scheduler (it moves due retries and delayed jobs onto the queue)
    dies on a Redis error, and RQ starts it again only in the worker's maintenance
    pass: every 10 minutes by default, every 30 s in jobs/worker.py. Without that,
    every retry waits up to 10 minutes after a Redis restart or failover."""
    settings = {**app_config, "REDIS_URL": restartable_redis.url}
    with WorkerProcesses(process_env(settings)) as workers:
        workers.start(1)
        redis = Redis.from_url(restartable_redis.url)
        # Its scheduler holds every queue's lock and the worker waits for a job: killed
        # any sooner, Redis takes the starting worker down with it, the pool starts
        # another, and that one finds the dead one's lock (the append-only file keeps
        # it) and schedules the other queues only.
        wait_for(lambda: _settled(redis), 30, "the worker's scheduler")
        (worker,) = Worker.all(connection=redis)

        restartable_redis.kill()
        time.sleep(3)  # long enough for the scheduler's next poll to fail for good
        restartable_redis.start()
        # The dead scheduler's lock would expire within 61 s; expire it now.
        redis.delete(*redis.keys("rq:scheduler-lock:*"))
        job = Queue("default", connection=redis).enqueue_in(timedelta(seconds=1), len, "abc")

        wait_for(lambda: job.get_status() == "finished", 60, "the delayed job to run")
        assert [w.name for w in Worker.all(connection=redis)] == [worker.name]
        redis.close()


def _settled(redis: Redis) -> bool:
    locks = redis.keys("rq:scheduler-lock:*")
    workers = Worker.all(connection=redis)
    return len(locks) == len(QUEUES) and len(workers) == 1 and workers[0].get_state() == "idle"


def test_mail_server_down_for_a_while_then_everything_is_delivered(
    app, rq_workers, smtp_sink, redis
):
    app.config["MAILER_DELAY_SECONDS"] = 0
    smtp_sink.stop()
    rq_workers.start(1)  # with --with-scheduler, as every worker here, so retries fire
    ids = submit(app, count=5)
    wait_for(lambda: all(submissions.load(redis, i).attempts >= 2 for i in ids), 60, "no retries")
    assert all(status(redis, i) in ("queued", "sending") for i in ids)

    smtp_sink.start()

    smtp_sink.wait_for(5, timeout=60)
    wait_for(lambda: all(status(redis, i) == "sent" for i in ids), 30, "not sent")
    assert len(smtp_sink.messages) == 5
