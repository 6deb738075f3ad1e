"""Starting the real `python -m mailcatcher`, and sending it real mail."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import resource
import signal
import smtplib
import socket
import subprocess
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType

from harness.polling import wait_for
from harness.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
EMAILS = ROOT / "tests" / "fixtures" / "emails"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


class MailcatcherProcess:
    """One `python -m mailcatcher` subprocess on free ports."""

    def __init__(self, *args: str, log_dir: Path, max_files: int | None = None) -> None:
        self.smtp_port = free_port()
        self.http_port = free_port(exclude_ports=[self.smtp_port])
        self.args = ["--smtp-port", str(self.smtp_port), "--http-port", str(self.http_port), *args]
        self.log_path = log_dir / f"mailcatcher-{self.http_port}.log"
        self.process: subprocess.Popen | None = None
        self.max_files = max_files  # its RLIMIT_NOFILE, to run it out of file handles

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}/messages"

    def start(self) -> MailcatcherProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mailcatcher", *self.args],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=self._limit_files if self.max_files else None,
            )
        wait_for(self._listening, START_TIMEOUT, f"mailcatcher to listen\n{self.log}")
        return self

    def _limit_files(self) -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.max_files, self.max_files))

    def _listening(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"mailcatcher exited with {self.process.returncode}:\n{self.log}")
        return all(_answers(port) for port in (self.smtp_port, self.http_port))

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Signal, wait, and kill if it does not go; returns the exit status."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signum)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def eml(name: str) -> bytes:
    """A fixture message with CRLF line endings, as it travels over SMTP."""
    return re.sub(rb"\r?\n", b"\r\n", (EMAILS / name).read_bytes())


def send(
    port: int,
    message: EmailMessage | bytes,
    sender: str = "sender@example.com",
    recipients: Iterable[str] = ("someone@example.com",),
) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        if isinstance(message, EmailMessage):
            smtp.send_message(message, sender, list(recipients))
        else:
            smtp.sendmail(sender, list(recipients), message)


def simple_message(subject: str = "Hello", body: str = "Hello there.", **headers: str):
    message = EmailMessage()
    message["From"] = headers.pop("From", "sender@example.com")
    message["To"] = headers.pop("To", "someone@example.com")
    message["Subject"] = subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def run_async(coroutine):
    """asyncio.run in a thread of its own: Playwright's sync API keeps a loop running
    in the main thread once a browser test has run."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


CLIENT_DIR = ROOT / ".venv" / "mailcatcher-client"


def pypi_client() -> ModuleType:
    """The third-party `mailcatcher` client from PyPI. Its module has our package's
    name, so `make` installs it apart (requirements-client.lock) and it is loaded
    from there under another name."""
    path = CLIENT_DIR / "mailcatcher.py"
    assert path.exists(), f"{path} is missing: run `make install`"
    if str(CLIENT_DIR) not in sys.path:
        sys.path.append(str(CLIENT_DIR))  # for its `rx` 1.x import
    spec = importlib.util.spec_from_file_location("mailcatcher_pypi_client", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
