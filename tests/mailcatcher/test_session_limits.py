"""An SMTP session that sends no mail ends, and one client's sessions cannot keep
everyone else's mail out (issue 28): NOOP, RSET, HELO and EHLO do not hold a session
open, a session has a lifetime, and a connection over a cap first closes the
longest-idle session that is not inside a mail transaction.

Real sockets against a real `python -m mailcatcher`, with timeouts of a second or
two (flags), and conditions waited for in bounded loops, never timed."""

from __future__ import annotations

import contextlib
import socket
import time

import pytest
import requests

from harness.polling import wait_for
from tests.mailcatcher.helpers import MailcatcherProcess, send, simple_message

# How long a test keeps a session busy waiting for the sink to close it: far past
# the one-second timeouts the tests set, so a loaded machine cannot fail them.
PATIENCE = 8.0
PACE = 0.2  # between commands of a session kept alive


class Client:
    """A raw SMTP session: one command, one whole reply."""

    def __init__(self, server, source: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.smtp_port), 10, (source, 0))
        self.sock.settimeout(10)
        self.file = self.sock.makefile("rb")
        self.greeting = self.reply()

    def reply(self) -> bytes:
        """The next reply, all its lines; what came before the sink closed, if it did."""
        lines: list[bytes] = []
        with contextlib.suppress(ConnectionError):
            while line := self.file.readline():
                lines.append(line)
                if line[3:4] != b"-":
                    break
        return b"".join(lines)

    def command(self, line: str) -> bytes:
        try:
            self.sock.sendall(line.encode() + b"\r\n")
        except OSError:
            pass  # closed: its last words may still be there to read
        return self.reply()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@contextlib.contextmanager
def clients(server, count: int):
    """``count`` admitted sessions, after EHLO. The start-up probes of the fixture
    count until the sink has seen them close, so this retries for a moment."""
    for _ in range(50):
        opened = [Client(server) for _ in range(count)]
        if all(client.greeting.startswith(b"220 ") for client in opened):
            break
        for client in opened:
            client.close()
        time.sleep(0.1)
    else:
        raise AssertionError(f"{count} sessions were never all admitted")
    try:
        for client in opened:
            assert client.command("EHLO client").startswith(b"250")
        yield opened
    finally:
        for client in opened:
            client.close()


def keep_saying(client: Client, *lines: str) -> bytes | None:
    """Send ``lines`` over and over until a reply is not 2xx (returned: the sink's
    last words), or PATIENCE runs out (None: the session was never closed)."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        for line in lines:
            reply = client.command(line)
            if not reply.startswith(b"2"):
                return reply
        time.sleep(PACE)
    return None


def subjects(server) -> list[str]:
    return [m["subject"] for m in requests.get(f"{server.url}/messages", timeout=10).json()]


@pytest.fixture(scope="module")
def quick_idle(tmp_path_factory):
    """One sink for the module whose sessions are idle after a second."""
    server = MailcatcherProcess(
        "--smtp-idle-timeout", "1", log_dir=tmp_path_factory.mktemp("mailcatcher")
    )
    try:
        yield server.start()
    finally:
        server.stop()


def test_fifty_sessions_kept_up_with_noop_do_not_keep_out_anothers_mail(start_mailcatcher):
    server = start_mailcatcher()  # the default caps: 50 per client, all of them here
    with clients(server, 50) as holders:
        for _ in range(2):
            for holder in holders:
                assert holder.command("NOOP").startswith(b"250")

        send(server.smtp_port, simple_message("through"))  # was: 421 Too many connections

        assert subjects(server) == ["through"]
        # The longest-idle holder made room, and was told why; the others are open.
        assert holders[0].command("NOOP").startswith(b"421 ")
        assert all(holder.command("NOOP").startswith(b"250") for holder in holders[1:])
    assert "closed the longest-idle SMTP session" in server.log


# What a session says to stay open, after what (if anything) it said first.
CHATTER = [
    ((), "NOOP"),
    ((), "RSET"),
    ((), "HELO client"),
    ((), "EHLO client"),
    ((), "VRFY someone@example.com"),
    ((), "HELP"),
    (("MAIL FROM:<a@example.com>",), "NOOP"),  # inside a transaction, still no progress
]


def test_sessions_that_send_no_mail_are_closed_when_idle(quick_idle):
    """Each session says its line every PACE, all at once; each must be closed."""
    with clients(quick_idle, len(CHATTER)) as sessions:
        talking = dict(zip(CHATTER, sessions, strict=True))
        for (prelude, _), client in talking.items():
            for line in prelude:
                assert client.command(line).startswith(b"250")
        last_words: dict[tuple, bytes] = {}
        deadline = time.monotonic() + PATIENCE
        while talking and time.monotonic() < deadline:
            for said, client in list(talking.items()):
                reply = client.command(said[1])
                if not reply.startswith(b"2"):
                    del talking[said]
                    last_words[said] = reply
            time.sleep(PACE)

        assert not talking, f"kept open for {PATIENCE} s by {list(talking)}"
        assert all(words.startswith(b"421 ") for words in last_words.values()), last_words


def test_progress_in_a_transaction_keeps_a_session_open(quick_idle):
    """MAIL, RCPT, DATA and the message's lines are progress, however slow: with a
    one-second idle timeout, a message taking seconds, line by line, goes through."""
    with clients(quick_idle, 1) as [client]:
        assert client.command("MAIL FROM:<a@example.com>").startswith(b"250")
        for n in range(4):  # each phase lasts longer than the idle timeout
            assert client.command(f"RCPT TO:<r{n}@example.com>").startswith(b"250")
            time.sleep(0.3)
        assert client.command("DATA").startswith(b"354")
        client.sock.sendall(b"Subject: slowly\r\n\r\n")
        for n in range(4):
            client.sock.sendall(b"line %d\r\n" % n)
            time.sleep(0.3)
        assert client.command(".").startswith(b"250")
    wait_for(lambda: "slowly" in subjects(quick_idle), 10, "the slow message")


def test_a_session_past_its_lifetime_is_closed_even_while_making_progress(start_mailcatcher):
    server = start_mailcatcher("--smtp-session-max-seconds", "1")
    with clients(server, 1) as [client]:
        last_words = keep_saying(client, "MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>")

        assert last_words is not None, f"still open after {PATIENCE} s"
        assert last_words.startswith(b"421 ")
    send(server.smtp_port, simple_message("a new session"))  # a new one starts afresh
    assert subjects(server) == ["a new session"]


def test_a_session_mid_transaction_is_never_the_one_closed_to_make_room(start_mailcatcher):
    server = start_mailcatcher("--max-connections-per-client", "2")
    with clients(server, 1) as [busy]:
        assert busy.command("MAIL FROM:<a@example.com>").startswith(b"250")
        time.sleep(0.1)  # busy is now the longest idle, but mid-transaction
        with clients(server, 1) as [idle], clients(server, 1):  # the cap, then one more
            assert idle.reply().startswith(b"421 ")  # made room
            assert busy.command("RCPT TO:<b@example.com>").startswith(b"250")
            assert busy.command("DATA").startswith(b"354")
            assert busy.command("Subject: kept\r\n\r\nbody\r\n.").startswith(b"250")
    wait_for(lambda: "kept" in subjects(server), 10, "the message")


def test_when_every_session_is_mid_transaction_a_new_one_is_refused(start_mailcatcher):
    server = start_mailcatcher("--max-connections-per-client", "2")
    with clients(server, 2) as held:
        for client in held:
            assert client.command("MAIL FROM:<a@example.com>").startswith(b"250")

        refused = Client(server)
        try:
            assert refused.greeting.startswith(b"421 Too many connections")
        finally:
            refused.close()
        for client in held:  # neither was closed for it
            assert client.command("RCPT TO:<b@example.com>").startswith(b"250")


def test_help_still_lists_the_commands_this_sink_overrides(quick_idle):
    with clients(quick_idle, 1) as [client]:
        listed = client.command("HELP").split()
        assert {b"MAIL", b"RCPT", b"DATA"} <= set(listed)
        assert client.command("HELP MAIL").startswith(b"250 Syntax: MAIL FROM:")
