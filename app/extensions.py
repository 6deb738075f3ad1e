"""Extensions created unbound, then bound to each app in ``init_app``."""

import smtplib

import flask_mail
from flask import Flask, current_app
from flask_wtf.csrf import CSRFProtect
from redis import Redis

from app.limits import limiter


class _TimedConnection(flask_mail.Connection):
    """Flask-Mail opens smtplib without a timeout, so a stalled SMTP server would hold
    a worker forever. Same steps as Flask-Mail's, with MAIL_TIMEOUT_SECONDS added."""

    def configure_host(self) -> smtplib.SMTP:
        state, timeout = self.mail, current_app.config["MAIL_TIMEOUT_SECONDS"]
        smtp_class = smtplib.SMTP_SSL if state.use_ssl else smtplib.SMTP
        host = smtp_class(state.server, state.port, timeout=timeout)
        if state.use_tls:
            host.starttls()
        if state.username and state.password:
            host.login(state.username, state.password)
        return host


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
    limiter.init_app(app)
    # One client (and connection pool) per app. RQ needs raw bytes, so no decode_responses.
    app.extensions["redis"] = Redis.from_url(
        app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=5
    )


def get_redis() -> Redis:
    return current_app.extensions["redis"]
