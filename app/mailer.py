"""Build and send the GIF email (the lesson's UserNotifierMailer): nothing else.

Locks, the ``sent`` flag and retries belong to the job (jobs/gif_sender.py);
this module only turns a submission and a GIF into one email and hands it to
Flask-Mail.
"""

import time
from collections.abc import Callable
from email.charset import QP, Charset
from email.header import Header

from flask import current_app, render_template
from flask_mail import Message

from app.extensions import mail
from app.giphy import Gif
from app.submissions import Submission

SUBJECT_THOUGHT_CHARS = 60

# The text parts in quoted-printable UTF-8: no line of the email is longer than 76
# characters, however the thought is written (280 `&`, escaped in the HTML part, make
# a 1,400-byte line otherwise). RFC 5321 caps a line at 1,000 bytes, and strict mail
# servers refuse longer ones. Flask-Mail hands this charset to every part it makes.
UTF8_QUOTED_PRINTABLE = Charset("utf-8")
UTF8_QUOTED_PRINTABLE.body_encoding = QP


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


def build_message(submission: Submission, gif: Gif) -> Message:
    """Plain and HTML parts; an offline GIF travels inline as a CID part."""
    cid = f"gif-{submission.id}@work-it"
    image_src = f"cid:{cid}" if gif.source == "offline" else gif.url
    context = {"submission": submission, "gif": gif, "image_src": image_src}
    message = Message(
        subject=encoded_subject(subject_for(submission.thought)),
        recipients=[submission.email],
        body=render_template("email/gif_email.txt", **context),
        html=render_template("email/gif_email.html", **context),
        charset=UTF8_QUOTED_PRINTABLE,
    )
    # One stable Message-ID per submission: should a duplicate ever go out (README.md,
    # 'What "one email" can and cannot promise'), mail clients see the same message.
    message.msgId = f"<{submission.id}@work-it>"
    if gif.source == "offline":
        message.attach(gif.url, "image/gif", gif.data, "inline", headers={"Content-ID": f"<{cid}>"})
    return message


def send_email(
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
