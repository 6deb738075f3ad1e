"""rq-dashboard at /rq (lesson step 8, Sidekiq::Web's counterpart), behind HTTP basic auth.

Off unless DASHBOARD_PASSWORD is set: a dashboard that can requeue and delete
jobs never ships open. Its buttons post without CSRF tokens (and one of its
actions answers GET), so instead of Flask-WTF's check it refuses every request
that a browser says another site made (the Fetch Metadata `Sec-Fetch-Site`
header), while typing the address or clicking within the dashboard still works.
"""

import hmac

import rq_dashboard
from flask import Flask, abort, current_app, request
from flask_httpauth import HTTPBasicAuth

from app.extensions import csrf
from app.limits import limiter

URL_PREFIX = "/rq"
OTHER_SITES = {"cross-site", "same-site"}
# Failed sign-ins allowed per client address; past it, 429 until the minute is over.
SIGN_IN_LIMIT = "10 per minute"

auth = HTTPBasicAuth(realm="Work-It job dashboard")


@auth.verify_password
def verify_password(username: str, password: str) -> str | None:
    config = current_app.config
    user_ok = hmac.compare_digest(username.encode(), config["DASHBOARD_USERNAME"].encode())
    password_ok = hmac.compare_digest(password.encode(), config["DASHBOARD_PASSWORD"].encode())
    return username if user_ok and password_ok else None


@auth.login_required
def guard() -> None:
    """Every dashboard request: signed in, and not made by another site's page."""
    if request.headers.get("Sec-Fetch-Site") in OTHER_SITES:
        abort(403, "The job dashboard only answers its own pages.")


rq_dashboard.blueprint.before_request(guard)
limiter.limit(SIGN_IN_LIMIT, deduct_when=lambda response: response.status_code == 401)(
    rq_dashboard.blueprint
)


def init_app(app: Flask) -> None:
    if not app.config["DASHBOARD_PASSWORD"]:
        return
    app.config["RQ_DASHBOARD_REDIS_URL"] = app.config["REDIS_URL"]
    rq_dashboard.web.setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)
    # `guard` first: rq-dashboard's own hook opens a Redis connection for the instance
    # in the URL (and fails, 500, on a bad one); a stranger must get 401 and touch nothing.
    hooks = app.before_request_funcs[rq_dashboard.blueprint.name]
    hooks.insert(0, hooks.pop(hooks.index(guard)))
    csrf.exempt(rq_dashboard.blueprint)  # see `guard`
