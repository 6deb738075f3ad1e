"""A process that dies running a job (SIGKILL, out of memory, a segfault) is a failed
attempt like any other: recorded, retried while retries are left, and on the last one
the job is dead and raises its red flag. Both ways of running workers: the default
pool of non-forking workers (jobs/runtime/pool.py, which fails the dead worker's job within a
second and starts a new worker), and RQ's forking worker (whose horse dies; RQ alone
would skip the job's failure callback)."""

import signal

import pytest
from rq import Worker
from rq.registry import FailedJobRegistry

from app import keys, submissions
from harness.polling import wait_for
from harness.submissions import submit
from harness.worker_processes import (
    FORKING_WORKER,
    PROCFILE_WORKER,
    WorkerProcesses,
    process_env,
)

pytestmark = pytest.mark.slow

ADA = "ada@example.com"
ADMIN = "admin@work-it.localhost"


@pytest.fixture
def app_config(app_config):
    # No retry: the first attempt is the last. A mailer slow enough to die in.
    return {**app_config, "RETRY_MAX": 0, "MAILER_DELAY_SECONDS": 3}


@pytest.fixture(params=["pool", "forking"])
def workers(request, app_config, redis):
    command = PROCFILE_WORKER if request.param == "pool" else FORKING_WORKER
    with WorkerProcesses(process_env(app_config), command) as workers:
        yield workers


def test_a_job_process_killed_on_the_last_attempt_fails_the_job_and_raises_the_red_flag(
    app, workers, smtp_sink, redis
):
    workers.start(1)
    [submission_id] = submit(app, email=ADA)
    wait_for(lambda: submissions.load(redis, submission_id).status == "sending", 30, "sending")

    workers.job_process(0).send_signal(signal.SIGKILL)

    wait_for(lambda: smtp_sink.sent_to(ADMIN), 30, "the red flag's email")
    stored = submissions.load(redis, submission_id)
    assert (stored.status, stored.sent, stored.attempts) == ("failed", False, 1)
    assert "WorkHorseKilled" in stored.last_error and "signal 9" in stored.last_error
    assert FailedJobRegistry("mailers", connection=redis).get_job_ids() == [stored.job_id]
    assert redis.zscore(keys.PENDING, submission_id) is None  # not swept again
    assert smtp_sink.sent_to(ADA) == []
    assert workers.alive(), "the worker (or the pool) survives the process that died"
    wait_for(lambda: all(w.get_state() == "idle" for w in Worker.all(connection=redis)), 30, "idle")
    assert len(Worker.all(connection=redis)) == 1, "the dead worker is replaced, not left busy"
