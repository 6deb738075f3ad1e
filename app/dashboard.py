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

URL_PREFIX = "/rq"
OTHER_SITES = {"cross-site", "same-site"}

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


def init_app(app: Flask) -> None:
    if not app.config["DASHBOARD_PASSWORD"]:
        return
    app.config["RQ_DASHBOARD_REDIS_URL"] = app.config["REDIS_URL"]
    rq_dashboard.web.setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)
    csrf.exempt(rq_dashboard.blueprint)  # see `guard`
