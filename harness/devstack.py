"""`make dev`, run the way a learner runs it, for the lesson test, the browser
journey and `make screenshots`.

A learner works in a fresh clone: no `.env`, no `var/`, `.venv/bin` not on
PATH, and the default ports. Here each stack gets a work directory that mirrors
the repo through symlinks, minus `.env` and `var/`, so the lesson's own
`cp .env.example .env` and the Redis data it makes stay in a temporary
directory. The default ports (5000, 1080, 1025, 6379, and 2525 for the lesson's
dead SMTP server) are swapped for free ones, in the commands and in the output
they are expected to print, so a developer's own `make dev` or Redis is never
touched.
"""

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
from redis import Redis
from rq import Worker

from harness.polling import wait_for
from harness.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
# What a fresh clone does not have.
NOT_MIRRORED = {".env", "var", "myapp", ".git", ".pytest_cache", ".ruff_cache", "test-results"}
DEFAULT_PORTS = (5000, 1080, 1025, 6379, 2525)
STACK_READY_SECONDS = 90
WORKER_LISTENING = "*** Listening on mailers, default, maintenance"
STOP_SECONDS = 30
# The learner's shell: bash, or zsh (macOS's) with LESSON_SHELL=zsh, by hand.
LESSON_SHELL = os.environ.get("LESSON_SHELL", "bash")


def mirror_repo(workdir: Path) -> Path:
    """A directory that looks like a fresh clone of this repo (symlinks to its files)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for entry in ROOT.iterdir():
        if entry.name not in NOT_MIRRORED:
            (workdir / entry.name).symlink_to(entry)
    return workdir


def fresh_shell_env() -> dict[str, str]:
    """The environment of a new terminal: without the venv that `make test` put on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTEST"))}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != VENV_BIN]
    env["PATH"] = os.pathsep.join(path)
    env.pop("MAKEFLAGS", None)
    env.pop("MAKELEVEL", None)
    return env


# A terminal starts a command with Ctrl-C and Ctrl-\ at their defaults. The test run
# may have them ignored (started in the background by a script: `make test &`), and a
# child inherits that, so Python would never hear Ctrl-C; and a shell cannot undo it
# ("signals ignored upon entry cannot be trapped or reset"). So the command is
# started through this small exec, which puts both back first.
AS_A_TERMINAL_STARTS_IT = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "signal.signal(signal.SIGQUIT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])",
]


class Process:
    """A long-running command in its own session, its output collected line by line."""

    def __init__(self, command: str, cwd: Path, env: dict[str, str]) -> None:
        self.command = command
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [*AS_A_TERMINAL_STARTS_IT, LESSON_SHELL, "-c", command],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def session(self) -> list[psutil.Process]:
        """Every process still running in this command's session, and every process it
        started in a session of its own (bin/redis starts redis-server so)."""
        found = []
        with contextlib.suppress(psutil.Error):
            found += psutil.Process(self.proc.pid).children(recursive=True)
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error, OSError):
                if os.getsid(proc.pid) == self.proc.pid and proc not in found:
                    found.append(proc)
        return found

    def ctrl_c(self, timeout: float = STOP_SECONDS) -> list[str]:
        """Press Ctrl-C (SIGINT to the whole foreground process group, as a terminal
        does) and wait for the command to end; returns what it left running."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=timeout)
            self._reader.join(timeout=5)
            return [" ".join(p.cmdline()) for p in self.session()]
        except subprocess.TimeoutExpired:
            return [f"{self.command} (still running {timeout}s after Ctrl-C)"]
        finally:
            self.kill()

    def kill(self) -> None:
        for proc in self.session():
            with contextlib.suppress(psutil.Error):
                proc.kill()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)
        if not self._reader.is_alive():  # else a process we could not find holds the pipe:
            self.proc.stdout.close()  # closing it under the reader would block for good


class DevStack:
    """`make dev` and friends in a mirrored work directory, on free ports."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = mirror_repo(workdir)
        self.ports = {default: free_port() for default in DEFAULT_PORTS}
        self.dev: Process | None = None
        self.others: list[Process] = []
        self.settings: dict[str, str] = {}  # more of the environment, for every command

    # -- addresses -----------------------------------------------------------

    def localize(self, text: str) -> str:
        """The lesson's default ports, swapped for this stack's."""
        pattern = r"\b(" + "|".join(map(str, self.ports)) + r")\b"
        return re.sub(pattern, lambda m: str(self.ports[int(m.group(1))]), text)

    def url(self, default_port: int, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[default_port]}{path}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[6379]}/0"

    def env(self) -> dict[str, str]:
        """A fresh shell, pointed at this stack's ports (the defaults, elsewhere)."""
        return {
            **fresh_shell_env(),
            "WEB_PORT": str(self.ports[5000]),
            "MAILCATCHER_HTTP_PORT": str(self.ports[1080]),
            "MAILCATCHER_SMTP_PORT": str(self.ports[1025]),
            "MAIL_PORT": str(self.ports[1025]),
            "MAILCATCHER_URL": self.url(1080),
            "REDIS_URL": self.redis_url,
            "RQ_REDIS_URL": self.redis_url,  # what `rq worker` and `rq enqueue` read
            **self.settings,
        }

    # -- commands ------------------------------------------------------------

    def run(self, script: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """A shell block run to its end, as pasted into a fresh terminal. The script
        goes in on stdin, so that `pkill -f` in it cannot match its own shell."""
        return subprocess.run(
            [LESSON_SHELL, "-e", "-o", "pipefail", "-s"],
            input=self.localize(script),
            cwd=self.workdir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, command: str = "make dev") -> Process:
        """Start a long-running command (in a terminal of its own). A new `make dev`
        replaces the one before, as a learner presses Ctrl-C and starts it again."""
        if "make dev" in command:
            self.stop_dev()
        else:  # Ctrl-C, then the same command again
            self.stop_others(command)
        proc = Process(self.localize(command), self.workdir, self.env())
        if "make dev" in command:
            self.dev = proc
            self.wait_until_ready(proc, web=True)
        else:
            self.others.append(proc)
            if "make worker" in command:
                self.wait_until_ready(proc, web=False)
        return proc

    def running(self, command: str) -> Process | None:
        """The terminal where ``command`` runs (the newest such), if it still does."""
        if command == "make dev":
            return self.dev
        return next((p for p in reversed(self.others) if command in p.command), None)

    def wait_until_ready(self, proc: Process, web: bool) -> None:
        """Its worker listens on the queues; with `web`, the app and the mail catcher answer."""

        def ready() -> bool:
            if proc.proc.poll() is not None:
                raise AssertionError(f"{proc.command} exited:\n{proc.output()}")
            listening = any(WORKER_LISTENING in line for line in proc.lines)
            return listening and (not web or answers(self.url(5000)) and answers(self.url(1080)))

        wait_for(ready, STACK_READY_SECONDS, f"{proc.command} to start", interval=0.25)

    def workers(self) -> int:
        try:
            with Redis.from_url(self.redis_url, socket_connect_timeout=1) as redis:
                return len(Worker.all(connection=redis))
        except Exception:
            return 0

    def stop_dev(self) -> list[str]:
        """Ctrl-C in make dev's terminal (and in `make worker`'s, which need it);
        returns what was left running, which should be nothing."""
        left = []
        for proc in [p for p in self.others if "make worker" in p.command]:
            left += proc.ctrl_c()
            self.others.remove(proc)
        if self.dev is not None:
            left += self.dev.ctrl_c()
            self.dev = None
        return left

    def stop_others(self, command: str | None = None) -> list[str]:
        """Ctrl-C in the terminals running ``command`` (every terminal but make dev's,
        without one); returns what was left running."""
        left = []
        wanted = None if command is None else terminal(self.localize(command))
        for proc in [p for p in self.others if wanted in (None, terminal(p.command))]:
            left += proc.ctrl_c()
            self.others.remove(proc)
        return left

    def stop_all(self) -> None:
        with contextlib.suppress(Exception):
            self.stop_dev()
        for proc in self.others:
            proc.kill()
        self.others.clear()


def terminal(command: str) -> str:
    """Commands that differ only in the settings before them (`A=1 flask run`, `flask
    run`) run in the same terminal: the later one is the earlier, restarted."""
    return re.sub(r"(?:^|(?<=&& ))(?:[A-Z_]+=\S*\s+)+", "", command)


def redis_answers(url: str) -> bool:
    try:
        with Redis.from_url(url, socket_connect_timeout=1) as redis:
            return redis.ping()
    except Exception:
        return False


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


if __name__ == "__main__":  # a manual look: python -m harness.devstack /tmp/somewhere
    stack = DevStack(Path(sys.argv[1]))
    stack.start()
    print(stack.ports, flush=True)
    try:
        time.sleep(3600)
    finally:
        stack.stop_all()
