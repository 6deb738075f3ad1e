"""Run real worker processes over a prepared queue and time them, start-up excluded.

Jobs go in through the app's own path (accept: the submission and its job in one
transaction); run_workers says when they go in and what is timed. CPU is counted
per part: the worker processes, Redis, and the SMTP sink (this process, whose main
thread only waits).
"""

import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from redis import Redis
from rq import Worker
from rq.suspension import resume, suspend

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from app import config, create_app  # noqa: E402
from app.ops.redis_connection import connect  # noqa: E402
from harness.polling import wait_for  # noqa: E402
from harness.submissions import submit  # noqa: E402
from harness.worker_processes import WorkerProcesses, process_env  # noqa: E402

PYTHON = sys.executable
RQ = str(Path(sys.executable).parent / "rq")


def pool_command(workers: int, url: str) -> list[str]:
    """The Procfile's worker line: jobs/runtime/pool.py with WORKERS worker processes."""
    return [PYTHON, "-m", "jobs.runtime.pool", "--workers", str(workers), "--url", url, "mailers"]


def forking_command(url: str) -> list[str]:
    """RQ's own forking worker with the app built once (the setup before the pool)."""
    worker, job = "jobs.runtime.workers.ForkingWorker", "jobs.worker.AppJob"
    return [RQ, "worker", "--url", url, "--worker-class", worker, "--job-class", job, "mailers"]


@dataclass
class Run:
    jobs: int
    seconds: float
    cpu_workers: float
    cpu_redis: float
    cpu_sink: float

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds

    def cpu_ms_per_job(self) -> tuple[float, float, float]:
        parts = (self.cpu_workers, self.cpu_redis, self.cpu_sink)
        return tuple(1000 * part / self.jobs for part in parts)


def settings(redis_url: str, smtp_port: int, **changes) -> dict[str, str]:
    base = {
        "REDIS_URL": redis_url,
        "MAIL_PORT": str(smtp_port),
        "MAILER_DELAY_SECONDS": "0",
        "RATELIMIT_ENABLED": "false",
        "SECRET_KEY": "bench",
    }
    return {**base, **{k: str(v) for k, v in changes.items()}}


def enqueue(env: dict[str, str], count: int) -> None:
    app = create_app(config.load(env))
    submit(app, count, email="reader{n}@example.com", thought="thought number {n}")
    app.extensions["redis"].close()


def run_workers(command, env, redis_pid, sink, count, workers, late=False, timeout=600) -> Run:
    """Time ``count`` jobs through ``command``, which registers ``workers`` workers.

    Early (the default): the jobs wait in a suspended queue while the workers start;
    timed from the first email to the last, since a suspended worker looks for
    `rq resume` only once a second, each at its own moment. Late: the workers start
    on an empty queue and the jobs are enqueued at once, timed from the first enqueue
    to the last email; every worker starts together (`rq worker` must: it will not
    start while suspended)."""
    redis = connect(env["REDIS_URL"])
    if not late:
        suspend(redis)
        enqueue(env, count)
    before = sink.count
    pool = WorkerProcesses(process_env(env), command, workers, quiet=True)
    try:
        pool.start(1)
        pid = pool.procs[0].pid
        cpu = cpu_seconds(pid, redis_pid)
        started = time.perf_counter()
        enqueue(env, count) if late else resume(redis)
        wait_for(lambda: sink.count - before >= count, timeout, "every email")
        spent = [after - was for after, was in zip(cpu_seconds(pid, redis_pid), cpu, strict=True)]
        first, last = sink.arrived[before], sink.arrived[before + count - 1]
        seconds = last - started if late else (last - first) * count / (count - 1)
    finally:
        pool.stop_all(signal.SIGKILL)
        forget_workers(redis)
    return Run(count, seconds, *spent)


def cpu_seconds(pid: int, redis_pid: int) -> tuple[float, float, float]:
    """CPU seconds so far: the process tree under ``pid``, Redis, this process."""
    tree = psutil.Process(pid)
    workers = 0.0
    for proc in [tree, *tree.children(recursive=True)]:
        try:
            workers += sum(proc.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return workers, sum(psutil.Process(redis_pid).cpu_times()[:2]), sum(os.times()[:2])


def forget_workers(redis: Redis) -> None:
    """Killed workers stay registered until their TTL: drop them before the next run.
    And give Redis a moment to see their connections close: a killed worker's BLMOVE
    still waiting there would take the next run's first job into RQ's intermediate
    list, where only RQ's maintenance pass or our sweeper would find it again."""
    time.sleep(1)
    for worker in Worker.all(connection=redis):
        worker.register_death()
    redis.close()
