"""The HTTP side closes idle and half-sent connections, and caps them without
locking the inbox out (issue 28): connections that sent nothing, or a request line
and a header every 10 s, stayed open, sharing the process's file handles with SMTP.

Real sockets against a real `python -m mailcatcher`, with a cap of a few
connections and timeouts of a second (flags), and conditions waited for in
bounded loops, never timed."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
import requests
import websocket

from tests.mailcatcher.helpers import MailcatcherProcess, send, simple_message

PATIENCE = 8.0  # far past the timeouts the tests set
PACE = 0.3  # between the headers of a slow client

HEAD = b"GET /messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.http_port), 10)
    sock.settimeout(10)
    return sock


def closed_by_the_sink(sock: socket.socket, dribble: bytes | None = None) -> bool:
    """Whether the sink closes ``sock`` within PATIENCE, while the client sends
    ``dribble`` every PACE (or nothing). Whatever it said first is read and let go."""
    sock.settimeout(PACE)
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        try:
            if dribble:
                sock.sendall(dribble)
            if sock.recv(65536) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:  # reset: closed too
            return True
    return False


def still_open(sock: socket.socket) -> bool:
    """Open, and not answered: the sink is still waiting for the rest of a request."""
    sock.settimeout(0.1)
    try:
        sock.recv(1)  # an answer (a 503) or the close
    except TimeoutError:
        return True
    except OSError:
        pass
    return False


class Dribbler(threading.Thread):
    """Slow clients: each sent a request line, and now sends a header every PACE."""

    def __init__(self, socks: list[socket.socket]) -> None:
        super().__init__(daemon=True)
        self.socks, self.stop = socks, threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.wait(PACE):
            n += 1
            for sock in self.socks:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X-Slow-%d: 1\r\n" % n)


def messages(server) -> requests.Response:
    return requests.get(f"{server.url}/messages", timeout=10)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One sink for the module whose HTTP connections time out in half a second."""
    server = MailcatcherProcess(
        "--http-idle-timeout",
        "0.5",
        "--release-smtp",
        "127.0.0.1:9",  # never reached: the release test's body never arrives
        log_dir=tmp_path_factory.mktemp("mailcatcher"),
    )
    try:
        yield server.start()
    finally:
        server.stop()


def test_slow_clients_at_the_cap_do_not_stop_the_inbox(start_mailcatcher):
    server = start_mailcatcher("--http-max-connections", "5")
    slow = [connect(server) for _ in range(5)]
    for sock in slow:
        sock.sendall(HEAD)
    dribbler = Dribbler(slow)
    dribbler.start()
    try:
        time.sleep(PACE)  # a header each
        assert all(still_open(sock) for sock in slow)  # all five admitted, at the cap

        assert messages(server).status_code == 200
        assert messages(server).json() == []

        dribbler.stop.set()
        dribbler.join()
        # The longest idle made room, each time; the rest are still there.
        assert [still_open(sock) for sock in slow].count(False) >= 1
        assert "closed the longest-idle HTTP connection" in server.log
    finally:
        dribbler.stop.set()
        for sock in slow:
            sock.close()


def test_an_idle_connection_is_closed(quick):
    server = quick
    with connect(server) as silent:
        assert closed_by_the_sink(silent)


def test_a_request_dribbled_a_header_at_a_time_is_closed(quick):
    server = quick
    with connect(server) as slow:
        slow.sendall(HEAD)
        assert closed_by_the_sink(slow, dribble=b"X-Slow: 1\r\n")
    assert messages(server).status_code == 200


def test_a_kept_alive_connection_is_closed_once_idle(quick):
    server = quick
    with connect(server) as kept:
        kept.sendall(HEAD + b"\r\n")
        assert kept.recv(65536).startswith(b"HTTP/1.1 200 ")
        assert closed_by_the_sink(kept)


def test_websockets_cannot_take_every_connection(start_mailcatcher):
    """The one kind of request that lasts may hold half of the cap; the rest stays
    for the inbox's requests."""
    server = start_mailcatcher("--http-max-connections", "4")
    sockets = []
    try:
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            for _ in range(4):
                sockets.append(websocket.create_connection(server.ws_url, timeout=10))
        assert refused.value.status_code == 503
        assert len(sockets) == 2
        assert messages(server).status_code == 200
    finally:
        for live in sockets:
            live.close()


def test_a_request_body_dribbled_a_byte_at_a_time_times_out(quick):
    server = quick
    send(server.smtp_port, simple_message())
    message = messages(server).json()[-1]
    with connect(server) as slow:
        slow.sendall(
            b"POST /messages/%d/release HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{" % message["id"]
        )
        answer = b""
        slow.settimeout(PACE)
        deadline = time.monotonic() + PATIENCE
        while not answer and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                slow.sendall(b" ")
                answer = slow.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408 ")


def test_a_client_that_reads_no_responses_is_cut_off(quick):
    """Requests sent, responses never read: once the sink's writes stall, the
    connection is cut after the idle timeout rather than held for ever."""
    server = quick
    pipelined = 1500  # some 7 MB of inbox pages: more than the socket buffers hold
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    with sock:
        sock.connect(("127.0.0.1", server.http_port))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * pipelined)
        time.sleep(2)  # the sink writes until its buffers are full, then stalls
        received = b""
        sock.settimeout(10)
        with contextlib.suppress(OSError):
            while chunk := sock.recv(1 << 20):
                received += chunk
    assert received.count(b"HTTP/1.1 200 ") < pipelined
