"""rq-dashboard at /rq (lesson step 8, Sidekiq::Web's counterpart), behind HTTP basic auth.

Off unless DASHBOARD_PASSWORD is set: a dashboard that can requeue and delete
jobs never ships open. The same sign-in guards /metrics (app/ops/metrics.py) when set.
What else a request must pass (a cap on wrong passwords, no requests from other
sites, no URLs rq-dashboard would fail on) is in app/guards/dashboard_guard.py.

Every request under /rq, whatever its method or whether a route matches, is
checked by one app-wide hook that runs before rq-dashboard's views (its own hook,
which opened a new Redis connection for the instance in the URL on every request,
is taken out: ``init_app``): not Flask-HTTPAuth's ``login_required``, which lets
OPTIONS through unchecked.
"""

import hmac

import rq_dashboard
from flask import Flask, current_app, request
from flask_httpauth import HTTPBasicAuth
from werkzeug.wrappers import Response

from app.extensions import csrf
from app.guards import dashboard_guard
from app.guards.dashboard_guard import METRICS_PATH

URL_PREFIX = "/rq"
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


def guard() -> Response | None:
    """Every request under /rq: signed in (a few wrong passwords a minute at most), and
    nothing rq-dashboard would mishandle or another site's page asked for."""
    if not _is_dashboard(request.path):
        return None
    credentials = auth.get_auth()
    if credentials is None:
        return auth.auth_error_callback(401)
    dashboard_guard.refuse_over_limit(credentials)
    if not auth.authenticate(credentials, None):
        dashboard_guard.count_wrong_password(credentials)
        return auth.auth_error_callback(401)
    dashboard_guard.refuse_what_it_cannot_serve()
    return None


def init_app(app: Flask) -> None:
    if not app.config["DASHBOARD_PASSWORD"]:
        return
    app.config["RQ_DASHBOARD_REDIS_URL"] = app.config["REDIS_URL"]
    rq_dashboard.web.setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)
    # rq-dashboard's own hook makes a new client (behind Sentinel, a new Sentinel too)
    # for every page whose URL holds an instance number, and drops the last one
    # unclosed. There is one instance (the guard 404s any other), so the client
    # setup_rq_connection made serves every request: the hook goes.
    app.before_request_funcs[rq_dashboard.blueprint.name].remove(
        rq_dashboard.web.push_rq_connection
    )
    # App-wide, so it runs before the blueprint's hooks and views, and also where no route
    # matches (a 404 or 405 under /rq tells a stranger nothing either).
    app.before_request(guard)
    csrf.exempt(rq_dashboard.blueprint)  # see `guard`
