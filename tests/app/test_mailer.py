import base64
import email
import email.policy

import pytest

from app import mailer
from app.giphy import Gif, offline_gif
from app.submissions import Submission

SUBMISSION = Submission(id="abc123", email="ada@example.com", thought='<b>"bold"</b> & more')


def test_html_part_escapes_the_thought_and_the_plain_part_keeps_it(app):
    with app.app_context():
        message = mailer.build_message(SUBMISSION, offline_gif(SUBMISSION.thought))
    assert "&lt;b&gt;&#34;bold&#34;&lt;/b&gt; &amp; more" in message.html
    assert '<b>"bold"</b> & more' in message.body


def test_offline_gif_is_attached_inline_with_the_cid_the_html_uses(app):
    gif = offline_gif("x")
    with app.app_context():
        message = mailer.build_message(SUBMISSION, gif)
    [attachment] = message.attachments
    assert (attachment.disposition, attachment.content_type) == ("inline", "image/gif")
    assert attachment.headers["Content-ID"] == "<gif-abc123@work-it>"
    assert 'src="cid:gif-abc123@work-it"' in message.html


def test_giphy_gif_is_linked_not_attached(app):
    gif = Gif(source="giphy", url="https://media.giphy.com/a.gif?x=1&y=2", title="A <gif>")
    with app.app_context():
        message = mailer.build_message(SUBMISSION, gif)
    assert message.attachments == []
    assert 'src="https://media.giphy.com/a.gif?x=1&amp;y=2"' in message.html
    assert 'alt="A &lt;gif&gt;"' in message.html


def test_message_id_is_stable_per_submission(app):
    with app.app_context():
        first = mailer.build_message(SUBMISSION, offline_gif("x"))
        second = mailer.build_message(SUBMISSION, offline_gif("x"))
    assert first.msgId == second.msgId == "<abc123@work-it>"


# What no thought may do to the email's headers, by whatever spelling: an RFC 2047
# encoded word that decodes to CR/LF (q and b, either case, at lengths on both sides
# of the 78-character fold), and raw line breaks, were the form ever bypassed.
FORGED = "Hi\r\nFrom:ceo@bank.test\r\n\r\n"
ENCODED_WORDS = [
    "=?utf-8?q?Hi=0D=0AFrom:ceo@bank.test=0D=0A=0D=0A?=",
    "=?UTF-8?Q?Hi=0d=0aFrom:ceo@bank.test=0d=0a=0d=0a?=",
    "=?utf-8?b?" + base64.b64encode(FORGED.encode()).decode() + "?=",
    "=?UTF-8?B?" + base64.b64encode(FORGED.encode()).decode() + "?=",
    "=?iso-8859-1?q?Bcc:_eve@bank.test=0A?=",
]
HOSTILE_THOUGHTS = [
    " ".join(["x" * pad, word]).strip()
    for word in ENCODED_WORDS
    for pad in (0, 5, 20, 40, 50, 55, 60, 70)
] + [
    "Hi\r\nFrom: ceo@bank.test",
    "Hi\nBcc: eve@bank.test",
    "Hi\rTo: eve@bank.test",
    "Hi\x85X-Evil: 1",
    "Hi\u2028X-Evil: 1\u2029",
    "Hi\x0b\x0c\x1c\x1d\x1eX-Evil: 1",
    "Hi\x00\x1b[2J",
]
EXPECTED_HEADERS = ["Content-Type", "MIME-Version", "Subject", "From", "To", "Date", "Message-ID"]


@pytest.mark.parametrize("thought", HOSTILE_THOUGHTS)
def test_no_thought_can_add_or_end_a_header(app, thought):
    """The same headers, each on its own lines, and the subject reads back as the thought."""
    submission = Submission(id="abc123", email="ada@example.com", thought=thought)
    with app.app_context():
        message = mailer.build_message(submission, offline_gif(thought))
        raw = message.as_bytes()
    head, blank, _ = raw.partition(b"\r\n\r\n")
    assert blank
    lines = head.split(b"\r\n")
    assert not any(b"\r" in line or b"\n" in line for line in lines)
    names = [line.split(b":")[0].decode() for line in lines if line[:1] not in b" \t"]
    assert names == EXPECTED_HEADERS
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == mailer.subject_for(thought)
    assert parsed["From"] == "Work-It <gifs@work-it.localhost>"


def test_the_subject_puts_the_thought_on_one_line():
    assert mailer.subject_for("a\r\nb\u2028c  d") == "A GIF for your thought: a b c d"


# A line of an email may hold 998 bytes (RFC 5322); escaped, 280 `&` make 1,400.
LONG_LINES = ["&" * 280, "\U0001f600" * 280, "<>" * 140, "é" * 280]


@pytest.mark.parametrize("thought", LONG_LINES)
def test_every_line_of_the_email_is_short_and_7_bit(app, thought):
    submission = Submission(id="abc123", email="ada@example.com", thought=thought)
    with app.app_context():
        raw = mailer.build_message(submission, offline_gif(thought)).as_bytes()
    assert raw.isascii()  # no BODY=8BITMIME needed
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert thought in parsed.get_body(("plain",)).get_content()


def test_long_thoughts_are_shortened_in_the_subject():
    subject = mailer.subject_for("z" * 280)
    assert subject.endswith("z…") and len(subject) < 100
    assert mailer.subject_for("short") == "A GIF for your thought: short"
