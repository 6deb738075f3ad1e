"""In-process checks of the pieces behind the servers: MIME parsing, the store, the bus."""

from __future__ import annotations

import json
import random

import pytest

from mailcatcher.events import OVERFLOW, Bus
from mailcatcher.mailbox import Mailbox
from mailcatcher.mime import parse
from mailcatcher.store import Store
from tests.mailcatcher.helpers import EMAILS, eml, run_async


@pytest.mark.parametrize("fixture", sorted(p.name for p in EMAILS.glob("*.eml")))
def test_every_fixture_parses_to_at_least_one_part(fixture):
    parsed = parse(eml(fixture))

    assert parsed.parts
    for part in parsed.parts:
        assert "/" in part.type and "\n" not in part.type
        assert part.cid is None or "\n" not in part.cid
        assert part.filename is None or "\n" not in part.filename and "\r" not in part.filename


def test_parse_never_raises_on_garbage():
    rng = random.Random(4)
    seeds = [eml(p.name) for p in EMAILS.glob("*.eml")]
    for _ in range(300):
        source = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 20)):
            source[rng.randrange(len(source))] = rng.randrange(256)
        assert parse(bytes(source)).parts


def test_text_parts_are_stored_as_utf8():
    source = (
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9\r\n"
    )

    [part] = parse(source).parts
    assert (part.charset, part.body) == ("utf-8", "Café\r\n".encode())


def test_store_formats_and_body_parts():
    store = Store()
    summary = store.add("<a@b.c>", ["<d@e.f>"], eml("inline_gif.eml"), parse(eml("inline_gif.eml")))

    assert store.formats(summary["id"]) == ["source", "html", "plain"]
    assert store.body_part(summary["id"], ["text/html"])["type"] == "text/html"
    assert store.part_by_cid(summary["id"], "work-it-gif@work-it.test")["filename"] == "party.gif"
    assert store.message(summary["id"])["type"] == "multipart/mixed"


def test_store_persists_to_a_file(tmp_path):
    path = tmp_path / "mail.sqlite3"
    first = Store(path)
    summary = first.add(
        "<a@b.c>", [], b"Subject: kept\r\n\r\nbody\r\n", parse(b"Subject: kept\r\n\r\nbody\r\n")
    )
    first.close()

    second = Store(path)
    assert second.messages() == [summary]
    second.close()


def test_mailbox_limit_removes_oldest_and_announces_it():
    async def scenario():
        bus = Bus()
        mailbox = Mailbox(Store(), bus, messages_limit=2)
        with bus.subscribe() as subscription:
            for n in range(3):
                mailbox.receive("a@b.c", ["d@e.f"], f"Subject: {n}\r\n\r\n".encode())
            frames = [json.loads(await subscription.get()) for _ in range(4)]
        return [m["subject"] for m in mailbox.store.messages()], frames

    subjects, frames = run_async(scenario())
    assert subjects == ["1", "2"]
    assert [f["type"] for f in frames] == ["add", "add", "add", "remove"]
    assert frames[3]["id"] == frames[0]["message"]["id"]


def test_a_subscriber_that_falls_behind_is_cut_off():
    async def scenario():
        bus = Bus(backlog=3)
        slow = bus.subscribe()
        for n in range(5):
            bus.publish({"type": "clear", "n": n})
        return bus.subscriber_count, await slow.get()

    assert run_async(scenario()) == (0, OVERFLOW)


@pytest.mark.parametrize(
    "arg",
    [
        "<a@b.c>",
        "<a@b.c> SIZE=123 BODY=8BITMIME",
        " <ada+x@example.com>",
        "<a.b@c.d>SIZE=1",
        "<first.last@sub.example.co.uk>  SMTPUTF8",
        "<a@b.c> (comment) SIZE=1",
        '<"q u"@b.c>',
        "<jörg@exämple.de>",
        "<>",
        "<a@[1.2.3.4]>",
        "a@b.c",
        "<" + "x" * 65 + "@b.c>",
        "<a@b.c",
    ],
)
def test_the_fast_address_reader_agrees_with_aiosmtpds(arg):
    """CatchingSMTP reads plain <local@domain> itself; anything else goes to aiosmtpd."""
    from aiosmtpd.smtp import SMTP

    from mailcatcher.smtp import CatchingSMTP

    server = CatchingSMTP(object())
    assert server._getaddr(arg) == SMTP._getaddr(server, arg)
