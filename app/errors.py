"""Error responses in one place: JSON under /api, HTML elsewhere, never a traceback.

A failed form post re-renders the form with what the person typed, so an
outage or an expired page costs them nothing but a second click.
"""

import logging

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from werkzeug.exceptions import HTTPException, SecurityError

from app.forms import ThoughtForm
from app.ops.bookkeeping import NotReplicated, refuses_writes
from app.rate_limits import TooManyThoughts

log = logging.getLogger(__name__)

REDIS_DOWN = (
    "Work-It cannot reach its job queue (Redis) right now, so it did not accept your "
    "thought. Nothing was stored or sent. Please try again in a moment."
)
NOT_REPLICATED = (
    "Work-It could not confirm that your thought was stored safely (no copy of it "
    "reached a replica of its job queue in time), so it cancelled it: nothing will be "
    "sent. Please try again in a moment."
)
NO_REPLICAS = (
    "Work-It's job queue (Redis) takes no writes while it cannot copy them to a "
    "replica, so it did not accept your thought. Nothing was stored or sent. Please "
    "try again in a moment."
)
CSRF_FAILED = "This form expired or was not sent from Work-It. Please submit it again."
RATE_LIMITED = (
    "Too many thoughts too quickly (limit: {limit}). Nothing was sent; "
    "please wait a minute and try again."
)
FULL_WHEN_DUE = (
    "Too many emails to this address would be due at that time (limit: {limit}). "
    "Nothing was stored; please pick another time."
)
RETRY_AFTER_SECONDS = 5


def wants_json() -> bool:
    return request.path.startswith("/api/")


def _form_again(message: str, status: int):
    """The form, with the posted values and a message at the top."""
    return render_template("thoughts/new.html", form=ThoughtForm(), alert=message), status


def handle_http_error(exc: HTTPException):
    headers = _headers_of(exc)
    if wants_json():
        return {"error": exc.description}, exc.code, headers
    template = "errors/404.html" if exc.code == 404 else "errors/generic.html"
    return render_template(template, error=exc), exc.code, headers


def _headers_of(exc: HTTPException) -> list[tuple[str, str]]:
    """The headers the error carries (a 405's Allow, a 429's Retry-After), but not its
    Content-Type: the body here is ours."""
    return [(name, value) for name, value in exc.get_headers() if name.lower() != "content-type"]


def handle_untrusted_host(exc: SecurityError):
    """A Host outside TRUSTED_HOSTS (Flask's check): a page without links, since no
    URL can be built for a host the app does not serve."""
    if wants_json():
        return handle_http_error(exc)
    return render_template("errors/untrusted_host.html", error=exc), exc.code


def handle_csrf_error(exc: CSRFError):
    if wants_json() or request.endpoint != "main.create_thought":
        return handle_http_error(exc)
    return _form_again(CSRF_FAILED, 400)


def handle_too_many(exc: TooManyThoughts):
    message = (FULL_WHEN_DUE if exc.when_due else RATE_LIMITED).format(limit=exc.limit)
    headers = {"Retry-After": str(exc.retry_after)}
    if wants_json():
        return {"error": message}, 429, headers
    body, status = _form_again(message, 429)
    return body, status, headers


def handle_redis_down(exc: Exception):
    return _unavailable(REDIS_DOWN, exc)


def handle_not_replicated(exc: NotReplicated):
    return _unavailable(NOT_REPLICATED, exc)


def handle_redis_refusal(exc: ResponseError):
    """A primary short of replicas refuses writes (NOREPLICAS): a 503 like an outage.
    Any other error reply is a bug, and stays one (a 500, logged)."""
    if not refuses_writes(exc):
        raise exc
    return _unavailable(NO_REPLICAS, exc)


def _unavailable(message: str, exc: Exception):
    log.error("redis unavailable path=%s error=%r", request.path, exc)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if wants_json():
        return {"error": message}, 503, headers
    if request.endpoint == "main.create_thought":
        body, status = _form_again(message, 503)
        return body, status, headers
    return render_template("errors/503.html", message=message), 503, headers


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(TooManyThoughts, handle_too_many)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(SecurityError, handle_untrusted_host)
    app.register_error_handler(RedisConnectionError, handle_redis_down)
    app.register_error_handler(RedisTimeoutError, handle_redis_down)
    app.register_error_handler(NotReplicated, handle_not_replicated)
    app.register_error_handler(ResponseError, handle_redis_refusal)
