"""Build and send the GIF email (the lesson's UserNotifierMailer): nothing else.

Locks, the ``sent`` flag and retries belong to the job (jobs/gif_sender.py);
this module only turns a submission and a GIF into one email and hands it to
Flask-Mail.
"""

import secrets
import time
from collections.abc import Callable
from email import policy
from email.charset import QP, Charset
from email.header import Header
from email.utils import parseaddr
from functools import cache

from flask import current_app, render_template
from flask_mail import Message

from app.extensions import mail
from app.giphy import Gif
from app.submissions import Submission

SUBJECT_THOUGHT_CHARS = 60
BOUNDARY_BYTES = 13

# The text parts in quoted-printable UTF-8: no line of the email is longer than 76
# characters, however the thought is written (280 `&`, escaped in the HTML part, make
# a 1,400-byte line otherwise). RFC 5321 caps a line at 1,000 bytes, and strict mail
# servers refuse longer ones. Flask-Mail hands this charset to every part it makes.
UTF8_QUOTED_PRINTABLE = Charset("utf-8")
UTF8_QUOTED_PRINTABLE.body_encoding = QP


class _AsIs(policy.Compat32):
    """Flask-Mail writes the message out under email.policy.SMTP, which parses every
    header of every part again on the way out: half the CPU of a send. This writes a
    short printable ASCII header line, nearly all of ours, as it is, and folds any
    other (a non-ASCII or long subject) exactly as email.policy.SMTP does: the bytes
    are Flask-Mail's (tests/app/test_mailer.py compares them)."""

    def _fold(self, name: str, value, sanitize: bool) -> str:
        if not isinstance(value, str):
            return super()._fold(name, value, sanitize)
        line = f"{name}: {value}"
        if line.isascii() and len(line) <= self.max_line_length and line.isprintable():
            return line + self.linesep
        return policy.SMTP.fold(name, value)


SMTP_AS_IS = _AsIs(linesep="\r\n")


class GifMessage(Message):
    def as_bytes(self) -> bytes:
        message = self._message()
        # Flask-Mail leaves its SMTP policy on the outer message, and every header the
        # generator looks up there (the boundary, the charset) would be parsed into a
        # header object first.
        message.policy = SMTP_AS_IS
        # Without a boundary, the generator makes a random one and compiles a regex to
        # look for it in the text: a third of the send's CPU. 104 random bits need no
        # look, and keep "Content-Type: multipart/alternative; boundary=..." within one
        # 78-character line, which is then written as it is instead of being folded.
        for part in message.walk():
            if part.is_multipart():
                part.set_boundary(f"=_{secrets.token_hex(BOUNDARY_BYTES)}")
        return message.as_bytes(policy=SMTP_AS_IS)


def subject_for(thought: str) -> str:
    """The subject as a person reads it: the thought on one line, shortened."""
    thought = " ".join(thought.split())
    short = thought if len(thought) <= SUBJECT_THOUGHT_CHARS else thought[:59] + "…"
    return f"A GIF for your thought: {short}"


def encoded_subject(text: str) -> str:
    """The Subject header's value, encoded (RFC 2047) and folded here, not by the email
    library: on some Python patch releases (3.11.7, 3.12.1) its folder decodes any
    encoded word inside a long header, `=?utf-8?q?Hi=0D=0AFrom:...?=` typed as a
    thought say, and writes the CR/LF it holds raw, so the thought would forge
    headers. Encoded whole and in short lines, the thought is only ever data: the
    library writes the lines as they are, and a reader's mail client decodes them
    once, back to the text typed."""
    return Header(text, "utf-8", header_name="Subject").encode(linesep="\r\n")


@cache
def _name_and_address(sender: str) -> tuple[str, str]:
    return parseaddr(sender)


def build_message(submission: Submission, gif: Gif) -> GifMessage:
    """Plain and HTML parts; an offline GIF travels inline as a CID part."""
    cid = f"gif-{submission.id}@work-it"
    image_src = f"cid:{cid}" if gif.source == "offline" else gif.url
    context = {"submission": submission, "gif": gif, "image_src": image_src}
    # Addresses go in as (name, address) pairs: Flask-Mail runs every string address
    # through the RFC 2822 parser three times per send, pairs not once.
    message = GifMessage(
        subject=encoded_subject(subject_for(submission.thought)),
        charset=UTF8_QUOTED_PRINTABLE,
        sender=_name_and_address(current_app.config["MAIL_DEFAULT_SENDER"]),
        recipients=[("", submission.email)],
        body=render_template("email/gif_email.txt", **context),
        html=render_template("email/gif_email.html", **context),
    )
    # One stable Message-ID per submission: a duplicate (see README, "Guarantees")
    # is then recognisable as the same message by any mail client.
    message.msgId = f"<{submission.id}@work-it>"
    if gif.source == "offline":
        message.attach(gif.url, "image/gif", gif.data, "inline", headers={"Content-ID": f"<{cid}>"})
    return message


def send_randomness_email(
    submission: Submission, gif: Gif, before_send: Callable[[], None] | None = None
) -> None:
    """Send after MAILER_DELAY_SECONDS: a stand-in for a slow mail provider, as in the lesson.

    ``before_send`` runs right before the SMTP transaction, after the delay: the job's
    last chance to check that it may still send (it still holds its lock).
    """
    message = build_message(submission, gif)
    time.sleep(current_app.config["MAILER_DELAY_SECONDS"])
    if before_send is not None:
        before_send()
    mail.send(message)
