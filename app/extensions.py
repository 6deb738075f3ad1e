"""Extensions created unbound, then bound to each app in ``init_app``."""

import logging
import smtplib
import time

import flask_mail
from flask import Flask, current_app
from flask_wtf.csrf import CSRFProtect
from redis import Redis

from app import limits

log = logging.getLogger(__name__)

END_OF_DATA = b"\r\n.\r\n"
# Once the session's time is up, each further step gets this long, then times out.
MIN_STEP_SECONDS = 0.001


class DeliveryUnknown(Exception):
    """The message went out, but the server's answer to it never came back (a timeout,
    a dropped connection): it may have queued the message. Sending again could make
    a duplicate, so this is recorded as unconfirmed, not retried."""


class _TimedConnection(flask_mail.Connection):
    """Flask-Mail's connection, made safe for a job that must send exactly once.

    - MAIL_TIMEOUT_SECONDS bounds the whole SMTP session, not each of its steps: a
      server that answers each step just in time cannot stretch a session past the
      job's budget (and past its lock) while it holds the message.
    - Once the server answered 250 to the message, the message is the server's: a
      failing QUIT afterwards (a hang-up, a TLS shutdown error) is logged, not raised,
      so it cannot make the job retry and send a second copy.
    - A failure while waiting for that 250 raises DeliveryUnknown.
    """

    def configure_host(self) -> smtplib.SMTP:
        state, timeout = self.mail, current_app.config["MAIL_TIMEOUT_SECONDS"]
        smtp_class = smtplib.SMTP_SSL if state.use_ssl else smtplib.SMTP
        deadline = time.monotonic() + timeout
        host = smtp_class(state.server, state.port, timeout=timeout)
        _watch_session(host, deadline)
        if state.use_tls:
            host.starttls()
        if state.username and state.password:
            host.login(state.username, state.password)
        return host

    def send(self, message: flask_mail.Message, envelope_from: str | None = None) -> None:
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
        try:
            self.host.quit()
        except (smtplib.SMTPException, OSError) as exc:
            log.warning("QUIT failed after the server accepted the message (%s): sent", exc)
            self.host.close()


def _watch_session(host: smtplib.SMTP, deadline: float) -> None:
    """Wrap the host's send(), through which smtplib sends every command and the
    message. Before each: give the socket only the time left until ``deadline`` (the
    reply is read under that timeout too). After the message and its closing
    CRLF.CRLF: remember that it went out, so a missing reply is known for what it is."""
    plain_send = host.send

    def send(data: bytes | str) -> None:
        host.sock.settimeout(max(deadline - time.monotonic(), MIN_STEP_SECONDS))
        plain_send(data)
        if isinstance(data, bytes) and data.endswith(END_OF_DATA):
            host.message_is_out = True

    host.message_is_out = False
    host.send = send


class TimedMail(flask_mail.Mail):
    def connect(self) -> flask_mail.Connection:
        return _TimedConnection(current_app.extensions["mail"])


mail = TimedMail()
csrf = CSRFProtect()


def init_app(app: Flask) -> None:
    mail.init_app(app)
    csrf.init_app(app)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"])
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "workit")
    limits.init_app(app)
    # One client (and connection pool) per app. RQ needs raw bytes, so no decode_responses.
    app.extensions["redis"] = Redis.from_url(
        app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=5
    )


def get_redis() -> Redis:
    return current_app.extensions["redis"]
