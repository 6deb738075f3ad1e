"""The launchers `make dev` runs through the Procfile."""

import os
import signal
import subprocess
import sys

from redis import Redis

from app import ROOT
from harness.devstack import redis_answers
from harness.polling import wait_for
from harness.ports import free_port


def run_env(**changes) -> dict[str, str]:
    return {**os.environ, **changes}


def test_bin_redis_uses_a_redis_that_answers_starts_nothing_and_stops_on_sigterm(redis_url):
    proc = subprocess.Popen(
        [sys.executable, "bin/redis"],
        cwd=ROOT,
        env=run_env(REDIS_URL=redis_url),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "already answers" in proc.stdout.readline()
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


def test_bin_redis_starts_a_server_where_a_local_redis_url_points(tmp_path):
    """A REDIS_URL on this machine that nothing answers yet (a .env copied from
    .env.example, once uncommented) gets a server there, with its data in var/redis."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bin" / "redis")],
        cwd=tmp_path,
        env=run_env(REDIS_URL=url),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert f"on {url[8:-2]}" in proc.stdout.readline()
        wait_for(lambda: redis_answers(url), 30, "the Redis bin/redis started")
        with Redis.from_url(url) as redis:  # every accepted write is on disk before the reply
            assert redis.config_get("appendfsync") == {"appendfsync": "always"}
            assert redis.config_get("appendonly") == {"appendonly": "yes"}
        proc.send_signal(signal.SIGINT)  # Ctrl-C, as honcho passes it on
        assert proc.wait(timeout=30) == 0
        assert not redis_answers(url)
        assert (tmp_path / "var" / "redis").is_dir()
    finally:
        proc.kill()
        proc.stdout.close()
