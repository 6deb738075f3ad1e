"""rq-dashboard at /rq (lesson step 8, Sidekiq::Web's counterpart), behind HTTP basic auth.

Off unless DASHBOARD_PASSWORD is set: a dashboard that can requeue and delete
jobs never ships open. Its buttons post without CSRF tokens (and one of its
actions answers GET), so instead of Flask-WTF's check it refuses every request
that a browser says another site made (the Fetch Metadata `Sec-Fetch-Site`
header), while typing the address or clicking within the dashboard still works.

Every request under /rq, whatever its method or whether a route matches, is
checked by one app-wide hook that runs before rq-dashboard's own (which opens a
Redis connection for the instance in the URL, and fails on a bad one): not
Flask-HTTPAuth's ``login_required``, which lets OPTIONS through unchecked.
"""

import hmac
import time

import rq_dashboard
from flask import Flask, abort, current_app, request
from flask_httpauth import HTTPBasicAuth
from limits import parse
from werkzeug.datastructures import Authorization
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from app.extensions import csrf
from app.limits import limiter

URL_PREFIX = "/rq"
OTHER_SITES = {"cross-site", "same-site"}
# Wrong passwords allowed per user name and client address; past it, 429 until the
# minute is over, without the password being checked (or a guesser would go on
# learning which one is right at full speed). Requests without credentials (a
# browser's first, which opens its prompt) and right passwords do not count.
SIGN_IN_LIMIT = parse("10 per minute")
SIGN_IN_SCOPE = ("workit", "dashboard-sign-in")

auth = HTTPBasicAuth(realm="Work-It job dashboard")


@auth.verify_password
def verify_password(username: str, password: str) -> str | None:
    config = current_app.config
    user_ok = hmac.compare_digest(username.encode(), config["DASHBOARD_USERNAME"].encode())
    password_ok = hmac.compare_digest(password.encode(), config["DASHBOARD_PASSWORD"].encode())
    return username if user_ok and password_ok else None


def _is_dashboard(path: str) -> bool:
    return path == URL_PREFIX or path.startswith(URL_PREFIX + "/")


def _sign_in_key(credentials: Authorization) -> str:
    """One counter per (user name, client address): a stranger guessing, or anyone
    else behind the same address, does not lock out someone else's sign-in."""
    return f"{credentials.username}@{request.remote_addr}"


def _refuse_over_limit(key: str) -> None:
    """429 with Retry-After once this user and client have used up their wrong tries."""
    if limiter.limiter.test(SIGN_IN_LIMIT, *SIGN_IN_SCOPE, key):
        return
    reset = limiter.limiter.get_window_stats(SIGN_IN_LIMIT, *SIGN_IN_SCOPE, key).reset_time
    raise TooManyRequests(
        f"Too many wrong passwords (limit: {SIGN_IN_LIMIT}). Try again in a minute.",
        retry_after=max(1, round(reset - time.time())),
    )


def guard() -> Response | None:
    """Every request under /rq: signed in, and not made by another site's page."""
    if not _is_dashboard(request.path):
        return None
    credentials = auth.get_auth()
    if credentials is None:
        return auth.auth_error_callback(401)
    key = _sign_in_key(credentials)
    _refuse_over_limit(key)
    if not auth.authenticate(credentials, None):
        limiter.limiter.hit(SIGN_IN_LIMIT, *SIGN_IN_SCOPE, key)
        return auth.auth_error_callback(401)
    if request.headers.get("Sec-Fetch-Site") in OTHER_SITES:
        abort(403, "The job dashboard only answers its own pages.")
    return None


def init_app(app: Flask) -> None:
    if not app.config["DASHBOARD_PASSWORD"]:
        return
    app.config["RQ_DASHBOARD_REDIS_URL"] = app.config["REDIS_URL"]
    rq_dashboard.web.setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)
    # App-wide, so it runs before rq-dashboard's own hook and also where no route
    # matches (a 404 or 405 under /rq tells a stranger nothing either).
    app.before_request(guard)
    csrf.exempt(rq_dashboard.blueprint)  # see `guard`
