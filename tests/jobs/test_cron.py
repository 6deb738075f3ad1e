"""The Procfile's `scheduler` line (`rq cron jobs.cron`) enqueues the sweep."""

import subprocess

import pytest
from rq import Queue

from tests.conftest import ROOT, parse_procfile, process_env
from tests.polling import wait_for

pytestmark = pytest.mark.slow

COMMAND = parse_procfile((ROOT / "Procfile").read_text()).processes["scheduler"]


def test_rq_cron_enqueues_the_sweeper_on_the_maintenance_queue(app_config, redis):
    proc = subprocess.Popen(
        COMMAND, shell=True, cwd=ROOT, env=process_env(app_config), start_new_session=True
    )
    try:
        queue = Queue("maintenance", connection=redis)
        wait_for(lambda: queue.count >= 1, 60, "no sweep was enqueued")
        [job] = queue.get_jobs()
        assert job.func_name == "jobs.sweeper.requeue_stuck_submissions"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
