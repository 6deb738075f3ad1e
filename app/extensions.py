"""Extensions created unbound, then bound to each app in ``init_app``."""

from flask import Flask, current_app
from flask_wtf.csrf import CSRFProtect
from redis import Redis

from app import keys, rate_limits
from app.ops import redis_connection
from app.ops.mail_connection import DeliveryUnknown, KeptConnectionMail

__all__ = ["DeliveryUnknown", "csrf", "get_redis", "init_app", "mail"]

mail = KeptConnectionMail()
csrf = CSRFProtect()


def init_app(app: Flask) -> None:
    mail.init_app(app)
    csrf.init_app(app)
    storage_uri, storage_options = redis_connection.limiter_storage(app.config["REDIS_URL"])
    app.config.setdefault("RATELIMIT_STORAGE_URI", storage_uri)
    app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", storage_options)
    app.config.setdefault("RATELIMIT_KEY_PREFIX", keys.RATE_LIMITS)
    rate_limits.init_app(app)
    # One client (and connection pool) per app. RQ needs raw bytes, so no decode_responses.
    app.extensions["redis"] = redis_connection.connect(
        app.config["REDIS_URL"], **redis_connection.TIMEOUTS
    )


def get_redis() -> Redis:
    return current_app.extensions["redis"]
