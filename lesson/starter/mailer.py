"""The GIF email (the lesson's UserNotifierMailer), and a slow mail provider."""

import os
import time
import zlib
from pathlib import Path

from flask import render_template
from flask_mail import Mail, Message

mail = Mail()
GIFS = sorted(Path(__file__).with_name("gifs").glob("*.gif"))
# A stand-in for a slow mail provider: every email takes this long to send.
DELAY_SECONDS = float(os.environ.get("MAILER_DELAY_SECONDS", "5"))


def send_randomness_email(email: str, thought: str) -> None:
    gif = GIFS[zlib.crc32(thought.encode()) % len(GIFS)]
    message = Message(
        subject="A GIF for your thought",
        recipients=[email],
        body=render_template("email.txt", thought=thought),
        html=render_template("email.html", thought=thought),
    )
    inline = {"Content-ID": "<gif>"}  # the HTML part shows it as cid:gif
    message.attach(gif.name, "image/gif", gif.read_bytes(), "inline", headers=inline)
    time.sleep(DELAY_SECONDS)
    mail.send(message)
