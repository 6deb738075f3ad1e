"""app/ops/email_bytes.py: the worker writes Flask-Mail's message itself, faster, and the
bytes are Flask-Mail's own but for the boundaries, for every kind of thought."""

import email.policy
import re

import pytest
from werkzeug.utils import import_string

from app import mailer
from app.extensions import mail
from app.giphy import Gif, offline_gif
from app.ops import email_bytes
from app.submissions import Submission
from harness.pinned import assert_unchanged
from tests.app.test_mailer import HOSTILE_THOUGHTS, LONG_LINES

THOUGHTS = [
    "a thought",
    '<b>"bold"</b> & more',
    "Füße, naïve café, 日本語の考え",
    "\U0001f600 emoji first",
    "word " * 60,  # a subject folded over lines
    *HOSTILE_THOUGHTS,
    *LONG_LINES,
]
GIPHY = Gif(source="giphy", url="https://media.giphy.com/a.gif?x=1&y=2", title="A <gif>")


def both_ways(
    app, thought: str, gif: Gif | None = None, to: str = "ada@example.com"
) -> tuple[bytes, bytes]:
    submission = Submission(id="abc123", email=to, thought=thought)
    with app.app_context():
        message = mailer.build_message(submission, gif or offline_gif(thought))
        message.date = 1796600000  # as Flask-Mail's Connection.send sets it, once
        return message.as_bytes(), email_bytes.write(message)


def without_boundaries(raw: bytes) -> bytes:
    for boundary in re.findall(rb'boundary="([^"]+)"', raw):
        raw = raw.replace(boundary, b"BOUNDARY")
    return raw


def unfolded(raw: bytes) -> bytes:
    """Flask-Mail's own boundary makes its multipart Content-Type line long enough to
    fold; ours fits on one. The same header either way."""
    return raw.replace(b';\r\n boundary="', b'; boundary="')


@pytest.mark.parametrize("thought", THOUGHTS)
def test_the_bytes_are_flask_mails_own_but_for_the_boundaries(app, thought):
    flask_mails, ours = both_ways(app, thought)
    assert unfolded(without_boundaries(ours)) == unfolded(without_boundaries(flask_mails))


def test_a_linked_gif_too(app):
    flask_mails, ours = both_ways(app, "a thought", GIPHY)
    assert unfolded(without_boundaries(ours)) == unfolded(without_boundaries(flask_mails))


@pytest.mark.parametrize(
    "to",
    ["a" * 64 + "@" + "b" * 63 + ".example.com", "ada@bücher.example", "ada.o'neil@example.com"],
)
def test_a_header_too_long_or_not_ascii_is_folded_as_flask_mail_folds_it(app, to):
    flask_mails, ours = both_ways(app, "a thought", to=to)
    assert unfolded(without_boundaries(ours)) == unfolded(without_boundaries(flask_mails))


def test_each_multipart_part_has_its_own_boundary_and_every_line_fits(app):
    _, ours = both_ways(app, "a thought")
    boundaries = re.findall(rb'boundary="([^"]+)"', ours)
    assert len(boundaries) == len(set(boundaries)) == 2  # mixed, and alternative inside
    assert all(len(line) <= 78 for line in ours.split(b"\r\n"))
    parsed = email.message_from_bytes(ours, policy=email.policy.default)
    assert [part.get_content_type() for part in parsed.walk()] == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "image/gif",
    ]


def test_no_header_is_parsed_while_writing(app, monkeypatch):
    """What makes it faster: email.policy.SMTP parses a header each time the generator
    reads one; here none is."""
    parsed = []
    fetch = email.policy.EmailPolicy.header_fetch_parse
    monkeypatch.setattr(
        email.policy.EmailPolicy,
        "header_fetch_parse",
        lambda self, name, value: parsed.append(name) or fetch(self, name, value),
    )
    submission = Submission(id="abc123", email="ada@example.com", thought="a thought")
    with app.app_context():
        message = mailer.build_message(submission, offline_gif("a thought"))
        email_bytes.write(message)
        assert parsed == []
        message.as_bytes()
    assert "Content-Type" in parsed


@pytest.mark.parametrize("fast", [True, False])
def test_the_mail_connection_sends_what_the_setting_says(make_app, smtp_sink, fast):
    app = make_app(MAIL_FAST_WRITE=fast, MAIL_KEEPALIVE_SECONDS=0)
    submission = Submission(id="abc123", email="ada@example.com", thought="a thought")
    with app.app_context():
        message = mailer.build_message(submission, offline_gif("a thought"))
        mail.send(message)
    [caught] = smtp_sink.wait_for(1)
    assert caught["To"] == "ada@example.com"
    assert caught.get_boundary().startswith("=_") is fast
    assert message.date is not None  # Connection.send's write reached the message


@pytest.mark.parametrize("member", sorted(email_bytes.RELIED_ON))
def test_the_flask_mail_member_it_calls_is_still_there(member):
    owner, name = member.rsplit(".", 1)
    assert_unchanged(import_string(owner), name, email_bytes.RELIED_ON[member])
