"""jobs/pool.py, the default way workers run: several worker processes share the
work exactly once, and a worker that grew too large or did its share is replaced."""

import contextlib

import psutil
import pytest
from rq import Queue, Worker

from app import submissions
from harness.polling import wait_for
from harness.submissions import submit
from harness.worker_processes import WorkerProcesses, process_env

pytestmark = pytest.mark.slow


@pytest.fixture
def pool(app_config):
    """Starts one pool of ``workers`` worker processes with some settings changed;
    stops every pool it started."""
    started: list[WorkerProcesses] = []

    def start(workers: int = 1, **settings) -> WorkerProcesses:
        env = process_env({**app_config, **{k: str(v) for k, v in settings.items()}})
        started.append(WorkerProcesses(env, workers=workers))
        started[-1].start(1)
        return started[-1]

    yield start
    for workers in started:
        workers.stop_all()


def worker_pids(workers: WorkerProcesses) -> list[int]:
    """The pool's worker processes (RQ titles them rq:worker:... once they run)."""
    children = psutil.Process(workers.procs[0].pid).children()
    return [c.pid for c in children if title(c).startswith("rq:worker:")]


def title(process: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):  # gone meanwhile
        return " ".join(process.cmdline())
    return ""


def the_worker(workers: WorkerProcesses) -> int:
    return wait_for(lambda: (worker_pids(workers) or [None])[0], 30, "a titled worker")


@pytest.mark.timeout(300)
def test_four_workers_share_500_submissions_and_send_each_exactly_once(app, pool, smtp_sink, redis):
    pool(workers=4)
    ids = submit(app, count=500)

    smtp_sink.wait_for(500, timeout=240)
    wait_for(lambda: all(submissions.load(redis, i).sent for i in ids), 60, "all sent")
    done = {w.name: w.successful_job_count for w in Worker.all(connection=redis)}

    recipients = [m["To"] for m in smtp_sink.messages]
    assert sorted(recipients) == sorted(f"user{n}@example.com" for n in range(500))
    assert len(done) == 4 and all(count > 0 for count in done.values()), done


def test_a_worker_that_leaks_past_the_memory_ceiling_is_replaced(pool, redis):
    workers = pool(WORKER_MAX_MEMORY_MB=150)
    before = the_worker(workers)
    job = Queue("default", connection=redis).enqueue("tests.jobs.hoard.hoard", 200)

    wait_for(lambda: job.get_status() == "finished", 60, "the job to finish")
    wait_for(lambda: worker_pids(workers) not in ([], [before]), 30, "a new worker")
    [after] = worker_pids(workers)
    assert not psutil.pid_exists(before)
    assert psutil.Process(after).memory_info().rss < 150 * 2**20
    assert len(Worker.all(connection=redis)) == 1


def test_a_job_that_only_bloats_for_a_while_keeps_its_worker(pool, redis):
    workers = pool(WORKER_MAX_MEMORY_MB=150)
    before = the_worker(workers)
    job = Queue("default", connection=redis).enqueue("tests.jobs.hoard.bloat", 200)

    wait_for(lambda: job.get_status() == "finished", 60, "the job to finish")
    assert worker_pids(workers) == [before]
    assert psutil.Process(before).memory_info().rss < 150 * 2**20


def test_a_worker_retires_after_its_share_of_jobs(pool, redis):
    workers = pool(WORKER_MAX_JOBS=3)
    first = the_worker(workers)
    queue = Queue("default", connection=redis)
    jobs = [queue.enqueue("tests.jobs.hoard.nothing") for _ in range(4)]

    wait_for(lambda: all(j.get_status() == "finished" for j in jobs), 60, "the jobs")
    assert first not in worker_pids(workers)
    assert sorted(w.successful_job_count for w in Worker.all(connection=redis)) == [1]
