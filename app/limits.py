"""Throttling instead of uniqueness: the articles' advice once a job is idempotent.

Two limits on accepting a thought, per client address and per recipient address
(so nobody can flood one inbox from many addresses). Only accepted submissions
count (``deduct_when``): a typo does not use up anyone's allowance. Counters live
in the same Redis as the jobs.
"""

from collections.abc import Callable

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse_many
from werkzeug.wrappers import Response

limiter = Limiter(key_func=get_remote_address, headers_enabled=True)


LIMIT_SETTINGS = ("RATELIMIT_PER_CLIENT", "RATELIMIT_PER_RECIPIENT")


def init_app(app: Flask) -> None:
    """Refuse to start on a limit string Flask-Limiter cannot read: it would silently
    apply no limit at all."""
    for name in LIMIT_SETTINGS:
        try:
            parse_many(app.config[name])
        except ValueError as exc:
            raise ValueError(
                f"{name}={app.config[name]!r} is not a rate limit ({exc}); "
                "write it like '5 per minute' or '30/hour'"
            ) from exc
    limiter.init_app(app)


def per_client() -> str:
    return current_app.config["RATELIMIT_PER_CLIENT"]


def per_recipient() -> str:
    return current_app.config["RATELIMIT_PER_RECIPIENT"]


def recipient_key() -> str:
    data = request.get_json(silent=True) if request.is_json else request.form
    email = data.get("email") if hasattr(data, "get") else None
    return f"recipient:{str(email or '').strip().lower()}"


def accepted(response: Response) -> bool:
    return response.status_code in (202, 303)


def limit_submissions(view: Callable) -> Callable:
    """Both limits, shared by the form's POST and the API: one allowance, two doors."""
    by_recipient = limiter.shared_limit(
        per_recipient, scope="submissions-recipient", key_func=recipient_key, deduct_when=accepted
    )
    by_client = limiter.shared_limit(per_client, scope="submissions-client", deduct_when=accepted)
    return by_client(by_recipient(view))
