"""The Work-It web app: a form that hands slow work to a background job."""

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.routing import BaseConverter

from app import config, errors, extensions, submissions, timing
from app.guards import headers

ROOT = Path(__file__).resolve().parent.parent
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging() -> None:
    """Our own loggers ("app", "jobs") print INFO and up, once per process."""
    for name in ("app", "jobs"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter(LOG_FORMAT, "%H:%M:%S"))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)


class SubmissionIdConverter(BaseConverter):
    """`<submission_id:...>` in a route: only what submissions.new_id() makes matches,
    so an id that names another key (`<id>:journey`) is a 404, never a Redis error."""

    regex = submissions.ID_PATTERN


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the environment, then ``overrides`` (how tests inject servers)."""
    app = Flask(__name__, template_folder=str(ROOT / "templates"))
    app.config.update(config.load(), SESSION_COOKIE_SAMESITE="Lax")
    if overrides:
        app.config.update(overrides)
    if app.config["SECRET_KEY"] == config.DEV_SECRET_KEY:
        logging.getLogger(__name__).warning("SECRET_KEY is the dev default: set it outside dev")
    timing.init_app(app)  # first: its clock starts before any other hook runs
    app.after_request(headers.forbid_framing)
    app.after_request(headers.forbid_caching)
    extensions.init_app(app)
    configure_logging()

    from app import api, dashboard, views
    from app.guards import strict_json
    from app.ops import doctor, health, metrics

    app.json = strict_json.StrictJSONProvider(app)
    app.url_map.converters["submission_id"] = SubmissionIdConverter  # before the routes
    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    extensions.csrf.exempt(api.bp)  # JSON only: see guards/strict_json.require_json
    dashboard.init_app(app)
    metrics.init_app(app)
    errors.init_app(app)
    app.jinja_env.globals["Status"] = submissions.Status  # the states, spelled once
    app.cli.add_command(doctor.doctor_command)  # requeue-stuck comes from jobs/ (pyproject)
    return app
