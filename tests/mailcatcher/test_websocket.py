"""MailCatcher's websocket at /messages: frames reach a connected client as things happen.

As in MailCatcher's own spec, each test opens the socket (the handshake has
completed when create_connection returns) before it sends any mail.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
import requests
import websocket

from tests.mailcatcher.helpers import send, simple_message


@contextmanager
def live(server, **options):
    socket = websocket.create_connection(server.ws_url, timeout=10, **options)
    try:
        yield socket
    finally:
        socket.close()


def frame(socket) -> dict:
    return json.loads(socket.recv())


def test_new_mail_reaches_a_connected_client(mailcatcher):
    with live(mailcatcher) as socket:
        send(mailcatcher.smtp_port, simple_message("Live!"), "a@example.com", ["b@example.com"])

        added = frame(socket)

    [listed] = requests.get(f"{mailcatcher.url}/messages", timeout=10).json()
    # MailCatcher's frame holds its message row: what GET /messages lists, and the type.
    assert added == {"type": "add", "message": {**listed, "type": "text/plain"}}
    assert added["message"]["subject"] == "Live!"


def test_deletes_and_clears_reach_a_connected_client(mailcatcher):
    send(mailcatcher.smtp_port, simple_message("one"))
    send(mailcatcher.smtp_port, simple_message("two"))
    first, _ = requests.get(f"{mailcatcher.url}/messages", timeout=10).json()

    with live(mailcatcher) as socket:
        requests.delete(f"{mailcatcher.url}/messages/{first['id']}", timeout=10)
        assert frame(socket) == {"type": "remove", "id": first["id"]}

        requests.delete(f"{mailcatcher.url}/messages", timeout=10)
        assert frame(socket) == {"type": "clear"}


def test_every_connected_client_hears(mailcatcher):
    with live(mailcatcher) as one, live(mailcatcher) as two:
        send(mailcatcher.smtp_port, simple_message("for both"))

        assert frame(one) == frame(two)


def test_other_sites_cannot_listen(mailcatcher):
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(mailcatcher.ws_url, timeout=10, origin="http://evil.example")

    assert refused.value.status_code == 403


def test_retention_keeps_the_newest_and_announces_removals(start_mailcatcher):
    server = start_mailcatcher("--messages-limit", "3")

    with live(server) as socket:
        for n in range(1, 6):
            send(server.smtp_port, simple_message(f"message {n}"))
        frames = [frame(socket) for _ in range(7)]

    listed = requests.get(f"{server.url}/messages", timeout=10).json()
    assert [m["subject"] for m in listed] == ["message 3", "message 4", "message 5"]
    ids = [f["message"]["id"] for f in frames if f["type"] == "add"]
    removed = [f["id"] for f in frames if f["type"] == "remove"]
    assert removed == ids[:2]
