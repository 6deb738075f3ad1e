"""Real worker processes, started and killed as production starts and loses them."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from honcho.environ import parse_procfile
from redis.exceptions import RedisError
from rq import Worker

from app import ROOT
from app.ops.redis_connection import close, connect
from harness.polling import wait_for

# The Procfile's own line (a pool of $WORKERS non-forking workers, jobs/runtime/pool.py),
# so what is tested and measured is what `make dev` runs.
PROCFILE_WORKER = parse_procfile((ROOT / "Procfile").read_text()).processes["worker"]
# A stopping worker that has not ended this long after its signal gets a nudge (stop_all).
NUDGE_AFTER_SECONDS = 3
# RQ's forking worker, the other way to run them.
FORKING_WORKER = (
    "exec rq worker --url $REDIS_URL --worker-class jobs.runtime.workers.ForkingWorker"
    " --job-class jobs.worker.AppJob --with-scheduler mailers default maintenance"
)


def process_env(settings: dict) -> dict[str, str]:
    """The environment a real worker (or web, or scheduler) process of these settings
    runs with: this one's, the settings as strings, this virtualenv first on PATH (the
    Procfile says `python`, `rq`), and no developer's .env."""
    env = {**os.environ, **{k: str(v) for k, v in settings.items() if v is not None}}
    env["PYTHONUNBUFFERED"] = "1"
    env["FLASK_SKIP_DOTENV"] = "1"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


class WorkerProcesses:
    """Worker processes of one command line, each in a session of its own so that it
    and everything under it can be stopped (or killed) together.

    ``command`` is a shell line (the Procfile's, by default) or an argv list;
    ``workers`` is how many workers each one registers (exported as WORKERS, which
    the Procfile's line reads; None leaves WORKERS and its default alone). ``quiet``
    sends their output nowhere, for a benchmark's long runs.
    """

    def __init__(
        self,
        env: dict[str, str],
        command: str | list[str] = PROCFILE_WORKER,
        workers: int | None = 1,
        quiet: bool = False,
    ) -> None:
        self.env = dict(env) if workers is None else {**env, "WORKERS": str(workers)}
        self.command = command
        self.workers = workers
        self.output = subprocess.DEVNULL if quiet else None
        self.redis = connect(env["REDIS_URL"])
        self.procs: list[subprocess.Popen] = []

    def start(self, count: int = 1, timeout: float | None = 60) -> None:
        """Start ``count`` more, and wait until each one's workers registered (unless
        ``timeout`` is None, or how many register is not known)."""
        names = self.names() if timeout is not None and self.workers else set()
        for _ in range(count):
            self.procs.append(
                subprocess.Popen(
                    self.command,
                    shell=isinstance(self.command, str),
                    cwd=ROOT,
                    env=self.env,
                    start_new_session=True,
                    stdout=self.output,
                    stderr=self.output,
                )
            )
        if timeout is not None and self.workers:
            wanted = count * self.workers
            wait_for(lambda: len(self.names() - names) >= wanted, timeout, "workers to register")

    def names(self) -> set[str]:
        return {w.name for w in Worker.all(connection=self.redis)}

    def alive(self) -> list[subprocess.Popen]:
        return [p for p in self.procs if p.poll() is None]

    def kill(self, index: int, sig: int = signal.SIGKILL) -> None:
        """Kill ``index`` and every process under it at once, as a crashing machine would.
        (RQ puts a forked work horse in a session of its own: a group kill misses it.)"""
        worker = psutil.Process(self.procs[index].pid)
        for proc in [*worker.children(recursive=True), worker]:
            with contextlib.suppress(psutil.NoSuchProcess):  # a horse may finish first
                proc.send_signal(sig)
        self.procs[index].wait(timeout=30)

    def job_process(self, index: int, timeout: float = 30) -> psutil.Process:
        """The process running a job under ``index``: the pool's worker process that is
        busy, or the work horse a forking worker forked (in a process group of its own)."""

        def busy(child: psutil.Process) -> bool:
            title = " ".join(child.cmdline())
            if title.startswith("rq:worker:"):
                return "Processing" in title
            return os.getpgid(child.pid) == child.pid

        def find() -> psutil.Process | None:
            for child in psutil.Process(self.procs[index].pid).children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    if busy(child):
                        return child
            return None

        return wait_for(find, timeout, "a process running the job")

    def stop_all(self, sig: int = signal.SIGTERM) -> None:
        """``sig`` to each one's whole process group; SIGKILL to any still there 30 s on.

        A worker waiting for a job inside a blocking read can miss its signal (CPython
        runs handlers in the main thread only; the kernel may hand the signal to RQ's
        pubsub thread): after a few seconds its connections are closed, once, which
        wakes it to see the signal, as bin/redis does on Ctrl-C."""
        for proc in self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
        if not self._all_ended(NUDGE_AFTER_SECONDS):
            with contextlib.suppress(RedisError):
                self.redis.client_kill_filter(_type="normal", skipme=True)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        close(self.redis)  # behind Sentinel (make failover-drill), its sentinels' too

    def _all_ended(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        return not self.alive()

    def __enter__(self) -> "WorkerProcesses":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop_all()
