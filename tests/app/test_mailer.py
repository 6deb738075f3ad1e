import email
import email.policy
import re

import flask_mail

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


def test_long_thoughts_are_shortened_in_the_subject():
    subject = mailer.subject_for("z" * 280)
    assert subject.endswith("z…") and len(subject) < 100
    assert mailer.subject_for("short") == "A GIF for your thought: short"


def test_the_fast_writer_gives_flask_mails_bytes_but_for_the_boundaries(app):
    """GifMessage.as_bytes skips Flask-Mail's re-parsing policy; what it writes must not
    change: not for a short ASCII thought, nor for a long non-ASCII one (folded)."""
    for thought in ("Mondays, but make it dance", "Über " + "lange Gedanken " * 12 + "ça va?"):
        ours, stock = _both_ways(app, thought)
        assert _boundaries_numbered(ours) == _boundaries_numbered(stock)
        parsed = email.message_from_bytes(ours, policy=email.policy.default)
        assert parsed["Subject"] == mailer.subject_for(thought)


def _both_ways(app, thought: str) -> tuple[bytes, bytes]:
    submission = Submission(id="abc123", email="ada@example.com", thought=thought)
    with app.app_context():
        message = mailer.build_message(submission, offline_gif(thought))
        message.date = 1700000000.0
        return message.as_bytes(), flask_mail.Message.as_bytes(message)


def _boundaries_numbered(raw: bytes) -> bytes:
    """Numbered, and unfolded: Flask-Mail's longer boundaries push their Content-Type
    past 78 characters, so the line is folded before them."""
    raw = raw.replace(b';\r\n boundary="', b'; boundary="')
    found = re.findall(rb'boundary="([^"]+)"', raw)
    assert len(found) == 2
    for n, boundary in enumerate(found):
        raw = raw.replace(boundary, b"BOUNDARY-%d" % n)
    return raw
