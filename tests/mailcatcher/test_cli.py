"""The process: flags, persistence across restarts, and a clean stop on signals."""

from __future__ import annotations

import shutil
import signal
import smtplib
import subprocess
import sys

import pytest
import requests
import websocket

from harness.ports import free_port
from mailcatcher.cli import parse_args
from tests.mailcatcher.helpers import ROOT, MailcatcherProcess, send, simple_message


def test_defaults_are_mailcatchers():
    options = parse_args([])

    assert (options.smtp_ip, options.smtp_port) == ("127.0.0.1", 1025)
    assert (options.http_ip, options.http_port) == ("127.0.0.1", 1080)
    assert options.db == ":memory:"
    assert options.messages_limit is None
    assert options.max_message_size == 20 * 1024 * 1024


def test_ip_sets_both_servers():
    options = parse_args(["--ip", "0.0.0.0", "--messages-limit", "5", "-f"])

    assert options.smtp_ip == options.http_ip == "0.0.0.0"
    assert options.messages_limit == 5


@pytest.mark.parametrize("bad", [["--messages-limit", "0"], ["--smtp-port", "x"]])
def test_bad_flags_are_refused(bad, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_args(bad)

    assert exit_.value.code == 2


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_it_cleanly_with_clients_connected(tmp_path, signum):
    server = MailcatcherProcess(log_dir=tmp_path).start()
    socket = websocket.create_connection(server.ws_url, timeout=10)
    smtp = smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10)
    try:
        smtp.ehlo()

        assert server.stop(signum) == 0  # stop() waits at most STOP_TIMEOUT seconds

        assert socket.recv_data()[0] == websocket.ABNF.OPCODE_CLOSE
        assert "Traceback" not in server.log
    finally:
        socket.shutdown()
        smtp.close()
        server.stop(signal.SIGKILL)


def test_db_keeps_mail_across_restarts(start_mailcatcher, tmp_path):
    db = str(tmp_path / "mail.sqlite3")
    first = start_mailcatcher("--db", db)
    send(first.smtp_port, simple_message("remember me"))
    [before] = requests.get(f"{first.url}/messages", timeout=10).json()
    assert first.stop() == 0

    second = start_mailcatcher("--db", db)
    assert requests.get(f"{second.url}/messages", timeout=10).json() == [before]
    plain = requests.get(f"{second.url}/messages/{before['id']}.plain", timeout=10)
    assert plain.text.strip() == "Hello there."


def test_busy_port_is_reported(mailcatcher_server, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mailcatcher",
            "--smtp-port",
            str(mailcatcher_server.smtp_port),
            "--http-port",
            str(free_port()),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 1
    assert "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr


def test_console_script_runs(tmp_path):
    script = shutil.which("mailcatcher", path=str(ROOT / ".venv" / "bin"))
    assert script is not None
    result = subprocess.run(
        [script, "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )

    assert result.returncode == 0, result.stderr


def test_delete_slash_quits_the_sink_as_mailcatchers_does(start_mailcatcher):
    server = start_mailcatcher()

    assert requests.delete(f"{server.url}/", timeout=10).status_code == 204
    assert server.process.wait(timeout=10) == 0
    assert "Traceback" not in server.log


def test_no_quit_refuses_delete_slash_and_keeps_serving(start_mailcatcher):
    server = start_mailcatcher("--no-quit")

    assert requests.delete(f"{server.url}/", timeout=10).status_code == 403
    assert server.process.poll() is None
    assert requests.get(f"{server.url}/messages", timeout=10).json() == []


def test_http_path_puts_every_route_under_the_prefix(start_mailcatcher):
    server = start_mailcatcher("--http-path", "/mail/")
    send(server.smtp_port, simple_message("Prefixed"))
    base = f"{server.url}/mail"

    bare = requests.get(base, timeout=10, allow_redirects=False)
    assert (bare.status_code, bare.headers["Location"]) == (302, "/mail/")
    page = requests.get(f"{base}/", timeout=10)
    assert 'src="assets/inbox.js"' in page.text  # relative: works under any prefix
    assert f"script-src {base}/assets/inbox.js;" in page.headers["Content-Security-Policy"]
    assert requests.get(f"{base}/assets/inbox.js", timeout=10).status_code == 200
    [message] = requests.get(f"{base}/messages", timeout=10).json()
    shown = requests.get(f"{base}/messages/{message['id']}.json", timeout=10)
    assert shown.json()["subject"] == "Prefixed"
    assert (
        "sandbox"
        in requests.get(f"{base}/messages/{message['id']}.plain", timeout=10).headers[
            "Content-Security-Policy"
        ]
    )
    assert requests.get(f"{server.url}/messages", timeout=10).status_code == 404
    socket = websocket.create_connection(f"ws://127.0.0.1:{server.http_port}/mail/messages")
    socket.close()


def test_version_is_the_projects(capsys):
    import tomllib

    with pytest.raises(SystemExit):
        parse_args(["--version"])
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert capsys.readouterr().out.strip() == f"mailcatcher {project}"
