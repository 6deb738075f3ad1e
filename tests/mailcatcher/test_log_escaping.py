"""Whatever a client sends, the sink's log shows control characters escaped: its
log is a terminal (`make dev`), where ESC sequences act and CR or U+2028 start a
line that looks like the sink's own."""

from __future__ import annotations

import smtplib

import requests

HOSTILE = ("\x1b", "\r", "\u2028", "\u2029", "\x85", "\x07", "\x9b")


def command(smtp: smtplib.SMTP, line: str) -> int:
    """One raw command line: smtplib refuses CR in its own commands."""
    smtp.send(line.encode("utf-8", "surrogateescape") + b"\r\n")
    return smtp.getreply()[0]


def send_hostile_session(port: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        assert command(smtp, "EHLO evil\x1b[2J.test") == 250
        assert command(smtp, 'MAIL FROM:<"a\x1b[2J"@b.test>') == 250
        assert command(smtp, "RCPT TO:<x@y.test>") == 250
        assert command(smtp, "DATA") == 354
        assert command(smtp, "Subject: hi\r\n\r\nbody\r\n.") == 250
        for line in (
            "BOGUS\x1b[31m\u2028forged INFO line",  # aiosmtpd logs unknown verbs
            'MAIL FROM:<"c\rINFO forged"@b.test>',
            'MAIL FROM:<"d\u2028forged\x85line"@b.test> SMTPUTF8',
            "RCPT TO:<e\x1b]0;title\x07@y.test>",
            "HELO \x9b2J",
        ):
            command(smtp, line)


def test_control_characters_from_smtp_are_escaped_in_the_log(start_mailcatcher):
    server = start_mailcatcher("-v")  # verbose: aiosmtpd and aiohttp log more input
    send_hostile_session(server.smtp_port)
    requests.get(f"{server.url}/messages/%1b%0d%e2%80%a8", timeout=10)
    assert len(requests.get(f"{server.url}/messages", timeout=10).json()) == 1
    assert server.stop() == 0

    log = server.log_path.read_bytes().decode("utf-8", "replace")
    assert "Received message from <a\\x1b[2J" in log or 'from <"a\\x1b[2J"' in log, log
    found = {repr(char) for char in HOSTILE if char in log}
    assert not found, f"raw {found} in the log:\n{log!r}"
