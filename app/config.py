"""Every setting Work-It reads, in one list: environment first, then the default.

The list is the documentation (``.env.example`` mirrors it, every line commented
out so that copying it to ``.env`` changes nothing, and a test checks that the
two agree). ``create_app(overrides)`` lays a mapping over it, which is
how the tests point the app at their own Redis, SMTP sink and Giphy stub.
"""

import os
from typing import Any


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _names(value: str) -> list[str]:
    """A comma-separated list: `a.example, .b.example`."""
    return [name.strip() for name in value.split(",") if name.strip()]


DEV_SECRET_KEY = "dev-only-secret-change-me"
# Where make dev's Redis listens; the worker pool and the cron scheduler use it too.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_RETENTION_DAYS = 30.0

# name: (parser, dev default)
SETTINGS: dict[str, tuple[Any, Any]] = {
    "SECRET_KEY": (str, DEV_SECRET_KEY),
    "REDIS_URL": (str, DEFAULT_REDIS_URL),
    # A submission and a `sent` flag count as stored once this many replicas have them
    # (Redis's WAIT; app/ops/replication.py), waiting at most REDIS_WAIT_TIMEOUT_MS. 0: one Redis.
    "REDIS_WAIT_REPLICAS": (int, 0),
    "REDIS_WAIT_TIMEOUT_MS": (int, 1000),
    # "later" enqueues the job (the point of the lesson); "now" runs it in the request.
    "WORKIT_DELIVERY": (str, "later"),
    # Simulated slow mail provider, as the lesson's 5-second mailer.
    "MAILER_DELAY_SECONDS": (float, 5.0),
    "MAIL_SERVER": (str, "127.0.0.1"),
    "MAIL_PORT": (int, 1025),
    "MAIL_USE_TLS": (_bool, False),
    "MAIL_USE_SSL": (_bool, False),
    "MAIL_USERNAME": (str, None),
    "MAIL_PASSWORD": (str, None),
    "MAIL_DEFAULT_SENDER": (str, "Work-It <gifs@work-it.localhost>"),
    "MAIL_TIMEOUT_SECONDS": (float, 10.0),
    # A worker keeps its SMTP connection for the next email this long (0: one per email).
    "MAIL_KEEPALIVE_SECONDS": (float, 30.0),
    # Write each email without parsing its headers again (app/ops/email_bytes.py): the
    # same bytes, a third of the CPU. false: Flask-Mail writes it.
    "MAIL_FAST_WRITE": (_bool, True),
    "GIPHY_API_KEY": (str, ""),
    "GIPHY_API_URL": (str, "https://api.giphy.com"),
    "GIPHY_TIMEOUT_SECONDS": (float, 3.0),
    # Retries back off exponentially from this base (5 s: about 21 minutes over 8 tries).
    "RETRY_BASE_SECONDS": (float, 5.0),
    "RETRY_MAX": (int, 8),
    # A worker process retires (the pool starts a fresh one) after this many jobs,
    # or as soon as a job leaves it using more memory than this.
    "WORKER_MAX_JOBS": (int, 10000),
    "WORKER_MAX_MEMORY_MB": (int, 300),
    # A worker asked to stop (docker stop, Ctrl-C) lets its email job run this long to
    # finish, then puts it back on its queue unless it is already sending
    # (jobs/runtime/shutdown.py).
    # A send under way is never cut off: keep this a few seconds under the time your
    # platform waits before SIGKILL (docker stop: 10 s). 6 covers the lesson's 5 s mailer.
    "WORKER_STOP_GRACE_SECONDS": (float, 6.0),
    # The pool's workers skip RQ's repeated bookkeeping (jobs/runtime/tuning.py); "off" runs
    # the plain reference worker, a comma list only the tricks named (benchmarks).
    "WORKER_TUNING": (str, "on"),
    # A finished submission (sent, failed, unconfirmed, cancelled), its journey and a
    # failed job are deleted this long after they finished. Pending ones are kept.
    "RETENTION_DAYS": (float, DEFAULT_RETENTION_DAYS),
    # Receives one red-flag email per dead job (empty: log line only).
    "ADMIN_EMAIL": (str, "admin@work-it.localhost"),
    # Throttling instead of job uniqueness (Flask-Limiter strings, kept in Redis).
    "RATELIMIT_ENABLED": (_bool, True),
    "RATELIMIT_PER_CLIENT": (str, "30 per minute"),
    "RATELIMIT_PER_RECIPIENT": (str, "5 per minute"),
    # The job dashboard at /rq; off while DASHBOARD_PASSWORD is empty.
    "DASHBOARD_USERNAME": (str, "admin"),
    "DASHBOARD_PASSWORD": (str, ""),
    # Prometheus metrics at /metrics (app/ops/metrics.py), behind the dashboard's sign-in
    # when it has a password; open without one (make dev serves on 127.0.0.1 only).
    "METRICS_ENABLED": (_bool, True),
    "WTF_CSRF_ENABLED": (_bool, True),
    # The session cookie (it holds the form's CSRF token) only over HTTPS. Off for
    # make dev's plain http://127.0.0.1; on behind TLS, as compose's web service has it.
    "SESSION_COOKIE_SECURE": (_bool, False),
    # Largest request body, in bytes: 413 past it, before it is read (Flask's own
    # setting). The form and the API's JSON are a few hundred bytes.
    "MAX_CONTENT_LENGTH": (int, 64 * 1024),
    # Host names the app answers to, any port (Flask's own setting; a leading dot
    # takes subdomains too). Any other Host gets 400: a page on a DNS-rebinding name
    # cannot use the app as its own.
    "TRUSTED_HOSTS": (_names, ["127.0.0.1", "localhost"]),
    # Accept addresses at *.test and localhost, which a local mail catcher is for.
    # email-validator refuses these special-use names; turn this off in production.
    "ALLOW_TEST_EMAIL_DOMAINS": (_bool, True),
    # The mail catcher's web inbox, linked from each submission's page.
    "MAILCATCHER_URL": (str, "http://127.0.0.1:1080"),
}


def load(environ: os._Environ | dict[str, str] = os.environ) -> dict[str, Any]:
    """Read each setting from ``environ``, falling back to its dev default."""
    config = {}
    for name, (parse, default) in SETTINGS.items():
        raw = environ.get(name)
        config[name] = default if raw in (None, "") else parse(raw)
    return config
