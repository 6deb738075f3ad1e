"""Fixtures that run the real `python -m mailcatcher` and stop what they start."""

from __future__ import annotations

import pytest
import requests

from tests.mailcatcher.helpers import MailcatcherProcess


@pytest.fixture(scope="session")
def mailcatcher_server(tmp_path_factory):
    """One server for the whole session, default flags, on free ports."""
    server = MailcatcherProcess(log_dir=tmp_path_factory.mktemp("mailcatcher"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def mailcatcher(mailcatcher_server):
    """The session server, emptied before the test."""
    requests.delete(f"{mailcatcher_server.url}/messages", timeout=10).raise_for_status()
    return mailcatcher_server


@pytest.fixture
def start_mailcatcher(tmp_path):
    """Start extra servers with their own flags; all are stopped after the test."""
    started: list[MailcatcherProcess] = []

    def start(*args: str, max_files: int | None = None) -> MailcatcherProcess:
        server = MailcatcherProcess(*args, log_dir=tmp_path, max_files=max_files)
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in started:
            server.stop()
