"""Flask-Mail's SMTP connection, made fit for a job that must send exactly once, fast.

- MAIL_TIMEOUT_SECONDS bounds each message's whole SMTP exchange, not each of its
  steps: a server that answers each step just in time cannot stretch a send past
  the job's budget (and past its lock) while it holds the message.
- Once the server answered 250 to the message, the message is the server's: a
  failing QUIT afterwards (a hang-up, a TLS shutdown error) is logged, not raised,
  so it cannot make the job retry and send a second copy.
- A failure while waiting for that 250 raises DeliveryUnknown.
- A worker keeps its connection for the next email (MAIL_KEEPALIVE_SECONDS idle at
  most, MAX_MESSAGES_PER_CONNECTION in all): connecting, greeting and EHLO cost more
  CPU on both ends than the message itself. A kept connection the server has closed
  meanwhile fails before the message goes out, so it is safe to reconnect and send
  at once; a fresh connection that fails is an error as before.
"""

import logging
import smtplib
import threading
import time
from typing import Any

import flask_mail
from blinker import Namespace
from flask import current_app

from app.ops import email_bytes

log = logging.getLogger(__name__)

# The members of Flask-Mail and smtplib replaced or wrapped here -> the parameters
# relied on; tests/app/ops/test_mail_connection.py fails, naming one, if it changes.
OVERRIDDEN: dict[str, tuple[str, ...]] = {
    "flask_mail.Connection.__init__": ("self", "mail"),
    "flask_mail.Connection.__enter__": ("self",),
    "flask_mail.Connection.__exit__": ("self", "exc_type", "exc_value", "tb"),
    "flask_mail.Connection.configure_host": ("self",),
    "flask_mail.Connection.send": ("self", "message", "envelope_from"),
    "flask_mail.Mail.connect": ("self",),
    "smtplib.SMTP.send": ("self", "s"),  # wrapped per connection (_watch_session)
}

# Sent right before a message's SMTP session starts: from here it may go out. A
# stopping worker (jobs/runtime/shutdown.py) no longer hands its job back after this.
about_to_send = Namespace().signal("about-to-send")

END_OF_DATA = b"\r\n.\r\n"
# Once the message's time is up, each further step gets this long, then times out.
MIN_STEP_SECONDS = 0.001
# Many servers cap the messages of one connection; stay well below the usual caps.
MAX_MESSAGES_PER_CONNECTION = 100


class DeliveryUnknown(Exception):
    """The message went out, but the server's answer to it never came back (a timeout,
    a dropped connection): it may have queued the message. Sending again could make
    a duplicate, so this is recorded as unconfirmed, not retried."""


class _ThreadConnection(threading.local):
    """This thread's open SMTP connection, what it was opened for, and its use."""

    host: smtplib.SMTP | None = None
    settings: tuple = ()
    last_used: float = 0.0
    messages: int = 0


class KeptConnection(flask_mail.Connection):
    def __init__(self, mail: Any, kept: _ThreadConnection) -> None:
        super().__init__(mail)
        self.kept = kept
        self.reused = False

    def __enter__(self) -> "KeptConnection":
        about_to_send.send(self)
        self.host, self.reused = (None, False) if self.mail.suppress else self._take()
        return self

    def _take(self) -> tuple[smtplib.SMTP, bool]:
        kept, settings = self.kept, _settings(self.mail)
        host, kept.host = kept.host, None  # ours now; given back in __exit__ if all went well
        if host is not None:
            if kept.settings == settings and time.monotonic() - kept.last_used < _keepalive():
                return _rearm(host), True
            _quit_quietly(host)
        return self.configure_host(), False

    def configure_host(self) -> smtplib.SMTP:
        state, timeout = self.mail, current_app.config["MAIL_TIMEOUT_SECONDS"]
        smtp_class = smtplib.SMTP_SSL if state.use_ssl else smtplib.SMTP
        deadline = time.monotonic() + timeout
        host = smtp_class(state.server, state.port, timeout=timeout)
        _watch_session(host, deadline)
        try:
            if state.use_tls:
                host.starttls()
            if state.username and state.password:
                host.login(state.username, state.password)
        except BaseException:
            host.close()  # no one else has it yet: left open, the GC would find it so
            raise
        self.kept.messages = 0
        return host

    def send(self, message: flask_mail.Message, envelope_from: str | None = None) -> None:
        try:
            self._send(message, envelope_from)
        except (smtplib.SMTPServerDisconnected, ConnectionError, smtplib.SMTPSenderRefused) as exc:
            # A kept connection the server closed: gone, or closed with a 421 that we read
            # as the answer to MAIL (RFC 5321 4.1.4: a server may say so at any time, as
            # it does for a session idle or open too long). Nothing went out yet.
            closed = not isinstance(exc, smtplib.SMTPSenderRefused) or exc.smtp_code == 421
            if not (self.reused and closed):  # (once out, _send raised DeliveryUnknown)
                raise
            log.info("the kept SMTP connection was closed (%s): sending on a new one", exc)
            self.host.close()
            self.host, self.reused = self.configure_host(), False
            self._send(message, envelope_from)

    def _send(self, message: flask_mail.Message, envelope_from: str | None) -> None:
        if current_app.config["MAIL_FAST_WRITE"]:
            message = email_bytes.Written(message)
        try:
            super().send(message, envelope_from)
        except smtplib.SMTPResponseException:
            raise  # the server answered: a definite refusal, whatever the stage
        except OSError as exc:  # smtplib's own errors are OSErrors too
            if getattr(self.host, "message_is_out", False):
                raise DeliveryUnknown(f"no answer to the message: {exc}") from exc
            raise

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        if self.host is None:
            return
        if exc_type is not None:
            self.host.close()  # a QUIT now could only hide the error that got us here
            return
        self.kept.messages += 1
        if _keepalive() > 0 and self.kept.messages < MAX_MESSAGES_PER_CONNECTION:
            self.kept.host, self.kept.settings = self.host, _settings(self.mail)
            self.kept.last_used = time.monotonic()
            return
        _quit_quietly(self.host)


def _quit_quietly(host: smtplib.SMTP) -> None:
    try:
        host.quit()
    except (smtplib.SMTPException, OSError) as exc:
        log.warning("QUIT failed after the server accepted every message (%s): sent", exc)
        host.close()


def _settings(state: Any) -> tuple:
    """``state``: Flask-Mail's settings object, ``app.extensions["mail"]``."""
    return (state.server, state.port, state.use_ssl, state.use_tls, state.username)


def _keepalive() -> float:
    return current_app.config.get("MAIL_KEEPALIVE_SECONDS", 0)


def _rearm(host: smtplib.SMTP) -> smtplib.SMTP:
    """A kept connection starts a new message: a new deadline, nothing sent yet."""
    host.deadline = time.monotonic() + current_app.config["MAIL_TIMEOUT_SECONDS"]
    host.message_is_out = False
    return host


def _watch_session(host: smtplib.SMTP, deadline: float) -> None:
    """Wrap the host's send(), through which smtplib sends every command and the
    message. Before each: give the socket only the time left until ``host.deadline``
    (the reply is read under that timeout too). After the message and its closing
    CRLF.CRLF: remember that it went out, so a missing reply is known for what it is."""
    plain_send = host.send

    def send(data: bytes | str) -> None:
        host.sock.settimeout(max(host.deadline - time.monotonic(), MIN_STEP_SECONDS))
        plain_send(data)
        if isinstance(data, bytes) and data.endswith(END_OF_DATA):
            host.message_is_out = True

    host.deadline = deadline
    host.message_is_out = False
    host.send = send


class KeptConnectionMail(flask_mail.Mail):
    """Flask-Mail with KeptConnection: one kept connection per thread."""

    def __init__(self, app=None) -> None:
        self.kept = _ThreadConnection()
        super().__init__(app)

    def connect(self) -> KeptConnection:
        return KeptConnection(current_app.extensions["mail"], self.kept)
