"""Release: a caught message sent on, unchanged, through the relay the flags name."""

from __future__ import annotations

import pytest
import requests
from aiosmtpd.controller import Controller
from playwright.sync_api import Page, expect

from harness.polling import wait_for
from harness.ports import free_port
from tests.mailcatcher.helpers import send, simple_message


class Relay:
    """A real SMTP server standing in for the one mail is released to."""

    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options) -> str:
        if address.startswith("bounce@"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def relay():
    handler, port = Relay(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    handler.port = port
    yield handler
    controller.stop()


def release(server, message_id: int, recipients, **kwargs) -> requests.Response:
    url = f"{server.url}/messages/{message_id}/release"
    return requests.post(url, json={"recipients": recipients}, timeout=30, **kwargs)


def caught_id(server) -> int:
    [message] = requests.get(f"{server.url}/messages", timeout=10).json()
    return message["id"]


def test_a_released_message_reaches_the_relay_unchanged(start_mailcatcher, relay):
    server = start_mailcatcher("--release-smtp", f"127.0.0.1:{relay.port}")
    send(server.smtp_port, simple_message("Release me", "body"), "app@example.com")
    message_id = caught_id(server)

    answer = release(server, message_id, ["ada@example.com", "bob@example.com"])

    assert answer.status_code == 200
    assert answer.json() == {"released_to": ["ada@example.com", "bob@example.com"]}
    [envelope] = relay.envelopes
    assert envelope.mail_from == "app@example.com"
    assert envelope.rcpt_tos == ["ada@example.com", "bob@example.com"]
    source = requests.get(f"{server.url}/messages/{message_id}.eml", timeout=10).content
    assert envelope.original_content.replace(b"\r\n", b"\n") == source.replace(b"\r\n", b"\n")


def test_release_is_off_unless_a_relay_is_given(mailcatcher):
    send(mailcatcher.smtp_port, simple_message("Stay"))
    answer = release(mailcatcher, caught_id(mailcatcher), ["ada@example.com"])
    assert answer.status_code == 503
    assert "--release-smtp" in answer.json()["error"]


@pytest.mark.parametrize(
    ("recipients", "status", "message"),
    [
        ([], 422, "one or more recipients"),
        (["not an address"], 422, "not an email address"),
        ([42], 422, "must be a string"),
        (["eve@elsewhere.org"], 422, "not allowed by --release-to"),
        (["bounce@example.com"], 502, "550"),
    ],
)
def test_bad_releases_are_refused_plainly(start_mailcatcher, relay, recipients, status, message):
    server = start_mailcatcher(
        "--release-smtp", f"127.0.0.1:{relay.port}", "--release-to", r"@example\.com$"
    )
    send(server.smtp_port, simple_message("Careful"))

    answer = release(server, caught_id(server), recipients)

    assert answer.status_code == status
    assert message in answer.json()["error"]
    assert relay.envelopes == []


def test_release_wants_json_and_an_existing_message(start_mailcatcher, relay):
    server = start_mailcatcher("--release-smtp", f"127.0.0.1:{relay.port}")
    form = requests.post(f"{server.url}/messages/1/release", data={"recipients": "a@b.c"})
    assert form.status_code == 415  # what a cross-site form could send
    assert release(server, 999, ["ada@example.com"]).status_code == 404


@pytest.mark.browser
def test_release_from_the_inbox(page: Page, start_mailcatcher, relay):
    server = start_mailcatcher("--release-smtp", f"127.0.0.1:{relay.port}")
    page.goto(server.url)
    expect(page.locator("html")).to_have_attribute("data-live", "open")
    send(server.smtp_port, simple_message("From the inbox", "hello"), "app@example.com")

    page.locator("#messages tbody tr", has_text="From the inbox").click()
    page.get_by_label("Release to").fill("ada@example.com, bob@example.com")
    page.get_by_role("button", name="Release").click()

    expect(page.locator("#release-status")).to_have_text(
        "Released to ada@example.com, bob@example.com."
    )
    wait_for(lambda: len(relay.envelopes) == 1, what="the relay to get it")
    assert relay.envelopes[0].rcpt_tos == ["ada@example.com", "bob@example.com"]
