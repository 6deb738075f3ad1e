"""The job dashboard's guards (app/dashboard.py mounts it and signs people in).

- Wrong passwords are counted per user name and client address, and past the
  limit refused with 429 before the password is checked.
- rq-dashboard's buttons post without CSRF tokens, and one of its actions answers
  GET: a request another site's page made is refused (the Fetch Metadata
  `Sec-Fetch-Site` header), and a change needs a POST whose `Origin` is our host.
- rq-dashboard trusts its URLs and fails with a 500 on an instance, job, queue,
  list or page that is not there: those are 404s here, before it sees them.
"""

import contextlib
import re
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

from flask import abort, current_app, request
from limits import parse
from redis.exceptions import RedisError
from rq import Queue
from rq.job import JOB_ID_PATTERN, Job
from werkzeug.datastructures import Authorization
from werkzeug.exceptions import TooManyRequests

from app import keys
from app.extensions import get_redis
from app.rate_limits import limiter

METRICS_PATH = "/metrics"  # app/ops/metrics.py: its scrape signs in like the dashboard
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


def refuse_over_limit(credentials: Authorization) -> None:
    """429 with Retry-After once this user and client have used up their wrong tries."""
    with _without_redis_for_metrics():
        _refuse_over_limit_of(_sign_in_key(credentials))


def count_wrong_password(credentials: Authorization) -> None:
    with _without_redis_for_metrics():
        limiter.limiter.hit(SIGN_IN_LIMIT, *SIGN_IN_SCOPE, _sign_in_key(credentials))


def refuse_what_it_cannot_serve() -> None:
    """After sign-in: another site's request, a change that is no POST from our own
    pages, and URLs rq-dashboard would answer with a 500."""
    if request.headers.get("Sec-Fetch-Site") in OTHER_SITES:
        abort(403, "The job dashboard only answers its own pages.")
    _refuse_what_is_not_there(request.view_args or {})
    _refuse_lists_that_cannot_be(request.view_args or {})
    _refuse_changes_from_elsewhere()


def _sign_in_key(credentials: Authorization) -> str:
    """One counter per (user name, client address): a stranger guessing, or anyone
    else behind the same address, does not lock out someone else's sign-in."""
    return f"{credentials.username}@{request.remote_addr}"


def _refuse_over_limit_of(key: str) -> None:
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
    views take it on trust and fail with a 500: LookupError,
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
