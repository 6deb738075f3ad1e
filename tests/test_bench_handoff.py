"""bench/handoff.py runs to the end (--quick), and its checks catch wrong figures."""

import subprocess
import sys

import pytest

from bench import handoff
from tests.test_compose import SERVICES

BENCH_FLAGS = ["--bind", "127.0.0.1:8000", "--no-control-socket", "--log-level", "warning"]
OK_RUN = {"n": 2, "seconds": 1.0, "latencies": [0.001, 0.002]}


@pytest.mark.slow  # real gunicorn servers, a few seconds
def test_quick_run_completes_with_both_pages_and_no_problem():
    result = subprocess.run(
        [sys.executable, "bench/handoff.py", "--quick"],
        cwd=handoff.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    bare = next(line for line in lines if "GET /bench/bare" in line)
    post = next(line for line in lines if "POST /api/thoughts" in line)
    compose_config = handoff.describe(handoff.gunicorn_command(None, 8000)).split()
    assert bare.split()[:2] == post.split()[:2] == compose_config
    assert "PROBLEM" not in result.stdout


def test_the_bench_serves_the_compose_web_command():
    command = handoff.gunicorn_command(None, 8000)
    compose = SERVICES["web"]["command"]
    assert "0.0.0.0:5000" in compose
    assert command[1:-1] == [*handoff.without_bind(compose[1:-1]), *BENCH_FLAGS]
    assert handoff.describe(handoff.gunicorn_command("sync:5", 8000)) == "sync 5x1"


def test_error_statuses_and_posts_without_a_job_are_problems():
    result = {
        "name": "sync 5x1",
        handoff.BARE: [{**OK_RUN, "statuses": {200: 2}}],
        handoff.POST: [{**OK_RUN, "statuses": {202: 1, 429: 1}}],
    }
    assert handoff.problems(result, queued=1) == [
        "sync 5x1 POST /api/thoughts: statuses {202: 1, 429: 1}"
    ]
    assert handoff.problems(result, queued=0)[-1] == "sync 5x1: 1 POSTs accepted, 0 jobs queued"
