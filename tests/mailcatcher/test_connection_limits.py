"""Connections cost the sink a file handle each: it caps them (in all and per client),
closes idle ones, and stays quiet in its log when handles run out anyway. Small
caps keep these tests to a handful of sockets. Over a cap, an idle session makes
room for a new one (tests/mailcatcher/test_session_limits.py), so the sessions held
here are each inside a mail transaction, which is never closed to make room."""

from __future__ import annotations

import contextlib
import socket
import time

import requests

from tests.mailcatcher.helpers import send, simple_message


def connect(server, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.smtp_port), 10, (source, 0))
    sock.settimeout(10)
    return sock


def greeting(sock: socket.socket) -> bytes:
    return sock.recv(1024)


def hold(server, count: int, source: str = "127.0.0.1") -> list[socket.socket]:
    """``count`` admitted connections, each inside a mail transaction. The fixture's
    own probes (is it listening?) count until the sink has seen them close, so this
    retries for a moment."""
    for _ in range(100):
        held = [connect(server, source) for _ in range(count)]
        if all(greeting(sock).startswith(b"220 ") for sock in held):
            for sock in held:
                sock.sendall(b"HELO client\r\n")
                assert greeting(sock).startswith(b"250")
                sock.sendall(b"MAIL FROM:<held@example.com>\r\n")
                assert greeting(sock).startswith(b"250")
            return held
        for sock in held:
            sock.close()
        time.sleep(0.1)
    raise AssertionError(f"{count} connections were never all admitted")


def test_over_the_cap_a_connection_gets_421_and_the_inbox_still_answers(start_mailcatcher):
    server = start_mailcatcher("--max-connections", "3")
    with contextlib.ExitStack() as stack:
        held = [stack.enter_context(sock) for sock in hold(server, 3)]

        for _ in range(4):
            with connect(server) as refused:
                assert greeting(refused).startswith(b"421 Too many connections")
                assert refused.recv(1024) == b""  # and closed
        assert requests.get(f"{server.url}/messages", timeout=10).json() == []

        held.pop().close()  # room again: mail goes through
        send_when_admitted(server)
    assert len(requests.get(f"{server.url}/messages", timeout=10).json()) == 1
    assert server.log.count("refusing SMTP connections") == 1  # one line for the burst


def send_when_admitted(server) -> None:
    """The sink notices a closed connection a moment after the client closes it."""
    for _ in range(50):
        try:
            send(server.smtp_port, simple_message("after the burst"))
            return
        except Exception:  # smtplib's 421 on connect
            time.sleep(0.1)
    raise AssertionError("never admitted again")


def test_one_client_cannot_take_every_connection(start_mailcatcher):
    server = start_mailcatcher("--max-connections-per-client", "2")
    with contextlib.ExitStack() as stack:
        for sock in hold(server, 2):
            stack.enter_context(sock)
        with connect(server) as third:
            assert greeting(third).startswith(b"421 ")
        with connect(server, source="127.0.0.2") as other_client:  # all of 127/8 is loopback
            assert greeting(other_client).startswith(b"220 ")


def test_an_idle_connection_is_closed(start_mailcatcher):
    server = start_mailcatcher("--smtp-idle-timeout", "0.5")
    with connect(server) as idle:
        assert greeting(idle).startswith(b"220 ")
        idle.settimeout(60)  # far under aiosmtpd's default of 300 s
        assert idle.recv(1024).startswith(b"421 ")  # said why,
        assert idle.recv(1024) == b""  # and closed by the sink, not a timeout here


def test_running_out_of_file_handles_logs_one_line_not_a_flood(start_mailcatcher):
    """asyncio retries accept() every second and logged each failure with a traceback."""
    server = start_mailcatcher("--max-connections", "1000", max_files=40)
    with contextlib.ExitStack() as stack:
        for _ in range(60):
            stack.enter_context(connect(server))
        time.sleep(3.5)  # three of asyncio's retries: three tracebacks before
    log = server.log
    assert log.count("out of system resource") + log.count("cannot accept connections") == 1, log
    assert "Traceback" not in log
