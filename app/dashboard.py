"""rq-dashboard at /rq (lesson step 8, Sidekiq::Web's counterpart), behind HTTP basic auth.

Off unless DASHBOARD_PASSWORD is set: a dashboard that can requeue and delete
jobs never ships open. The same sign-in guards /metrics (app/metrics.py) when set.
Its buttons post without CSRF tokens (and one of its actions answers GET), so
instead of Flask-WTF's check it refuses every request that a browser says another
site made (the Fetch Metadata `Sec-Fetch-Site` header), while typing the address
or clicking within the dashboard still works.

Every request under /rq, whatever its method or whether a route matches, is
checked by one app-wide hook that runs before rq-dashboard's own (which opens a
Redis connection for the instance in the URL, and fails on a bad one): not
Flask-HTTPAuth's ``login_required``, which lets OPTIONS through unchecked.
"""

import contextlib
import hmac
import re
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import rq_dashboard
from flask import Flask, abort, current_app, request
from flask_httpauth import HTTPBasicAuth
from limits import parse
from redis.exceptions import RedisError
from rq import Queue
from rq.job import JOB_ID_PATTERN, Job
from werkzeug.datastructures import Authorization
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from app import keys
from app.extensions import csrf, get_redis
from app.limits import limiter

URL_PREFIX = "/rq"
METRICS_PATH = "/metrics"  # app/metrics.py
OTHER_SITES = {"cross-site", "same-site"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# rq-dashboard's views that change jobs: only by POST.
CHANGES = {
    "rq_dashboard.requeue_all",
    "rq_dashboard.requeue_job_view",
    "rq_dashboard.delete_job_view",
    "rq_dashboard.empty_queue",
    "rq_dashboard.compact_queue",
}
# Wrong passwords allowed per user name and client address; past it, 429 until the
# minute is over, without the password being checked (or a guesser would go on
# learning which one is right at full speed). Requests without credentials (a
# browser's first, which opens its prompt) and right passwords do not count.
SIGN_IN_LIMIT = parse("10 per minute")
SIGN_IN_SCOPE = (keys.PREFIX, "dashboard-sign-in")

# What rq-dashboard's URLs may hold; it trusts them, and ends in a 500 on anything else.
REGISTRIES = {"queued", "failed", "deferred", "started", "finished", "scheduled", "canceled"}
ORDERS = {"asc", "dsc"}
PAGE_NUMBER = re.compile(r"[1-9][0-9]{0,5}")  # 1 to 999999: Redis takes any such offset

auth = HTTPBasicAuth(realm="Work-It job dashboard")


@auth.verify_password
def verify_password(username: str, password: str) -> str | None:
    config = current_app.config
    user_ok = hmac.compare_digest(username.encode(), config["DASHBOARD_USERNAME"].encode())
    password_ok = hmac.compare_digest(password.encode(), config["DASHBOARD_PASSWORD"].encode())
    return username if user_ok and password_ok else None


def _is_dashboard(path: str) -> bool:
    """The dashboard, and the metrics Prometheus reads (its scrape signs in the same way)."""
    return path in (URL_PREFIX, METRICS_PATH) or path.startswith(URL_PREFIX + "/")


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


@contextlib.contextmanager
def _without_redis_for_metrics() -> Iterator[None]:
    """The wrong-password counter lives in Redis. With Redis down the dashboard cannot
    work anyway (503), but a scrape must still get in and report it (workit_redis_up 0),
    so there the password is checked without the counter."""
    try:
        yield
    except RedisError:
        if request.path != METRICS_PATH:
            raise


def guard() -> Response | None:
    """Every request under /rq: signed in, and not made by another site's page."""
    if not _is_dashboard(request.path):
        return None
    credentials = auth.get_auth()
    if credentials is None:
        return auth.auth_error_callback(401)
    key = _sign_in_key(credentials)
    with _without_redis_for_metrics():
        _refuse_over_limit(key)
    if not auth.authenticate(credentials, None):
        with _without_redis_for_metrics():
            limiter.limiter.hit(SIGN_IN_LIMIT, *SIGN_IN_SCOPE, key)
        return auth.auth_error_callback(401)
    if request.headers.get("Sec-Fetch-Site") in OTHER_SITES:
        abort(403, "The job dashboard only answers its own pages.")
    _refuse_what_is_not_there(request.view_args or {})
    _refuse_lists_that_cannot_be(request.view_args or {})
    _refuse_changes_from_elsewhere()
    return None


def _refuse_changes_from_elsewhere() -> None:
    """A change needs a POST that says it comes from the dashboard's own host: browsers
    send `Origin` with every POST, and no page can forge it. A browser that sends no
    Sec-Fetch-Site, or a plain-HTTP deployment, relies on this; an image tag on another
    site, a GET, may not requeue anything (rq-dashboard's requeue-all answers GET)."""
    if request.method in SAFE_METHODS:
        if request.endpoint in CHANGES:
            abort(405)
        return
    if request.method == "POST" and urlsplit(request.origin or "").netloc != request.host:
        abort(403, "The job dashboard only changes jobs for its own pages.")


def _refuse_what_is_not_there(args: dict) -> None:
    """404 for an instance, job or queue that is not there, before rq-dashboard's
    views (and its own hook) take it on trust and fail with a 500: LookupError,
    NoSuchJobError, WRONGTYPE (`x:dependents` names another key)."""
    redis = get_redis()
    if args.get("instance_number", 0) >= len(current_app.config["RQ_DASHBOARD_REDIS_URL"]):
        abort(404, "The dashboard has one Redis instance: 0.")
    job_id = args.get("job_id")
    if job_id is not None and not (JOB_ID_PATTERN.fullmatch(job_id) and Job.exists(job_id, redis)):
        abort(404, "No job with that id.")
    queue_name = args.get("queue_name")
    if queue_name is not None and queue_name not in {q.name for q in Queue.all(redis)}:
        abort(404, "No queue with that name.")


def _refuse_lists_that_cannot_be(args: dict) -> None:
    """404 for a list of jobs rq-dashboard cannot page through: a registry it has not,
    an order it does not know, a page that is not 1 to 999999 (int('x') and a division
    by zero are its 500s; a huge offset is Redis's)."""
    if (
        args.get("registry_name", "queued") not in REGISTRIES
        or args.get("order", "asc") not in ORDERS
    ):
        abort(404, "No such list of jobs.")
    if not all(
        PAGE_NUMBER.fullmatch(str(args[name])) for name in ("per_page", "page") if name in args
    ):
        abort(404, "Pages are numbered from 1.")


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
