"""The launchers `make dev` runs through the Procfile."""

import os
import signal
import subprocess
import sys

from tests.conftest import ROOT


def run_env(**changes) -> dict[str, str]:
    return {**os.environ, **changes}


def test_bin_redis_uses_redis_url_starts_nothing_and_stops_on_sigterm(redis_url):
    proc = subprocess.Popen(
        [sys.executable, "bin/redis"],
        cwd=ROOT,
        env=run_env(REDIS_URL=redis_url),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "using REDIS_URL" in proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.stdout.close()


def test_wait_for_redis_returns_at_once_when_redis_answers(redis_url):
    result = subprocess.run(
        [sys.executable, "bin/wait-for-redis"],
        cwd=ROOT,
        env=run_env(REDIS_URL=redis_url),
        timeout=30,
    )
    assert result.returncode == 0
