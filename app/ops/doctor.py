"""`flask --app app doctor`: is everything a thought needs on the way to an inbox up?

The first thing to run when "nothing arrives". Each check is one line, `ok` or
`FAIL`, and a FAIL says in plain words what to do, because the person reading it
is often new to queues and workers. Every check is bounded by a short timeout
(Redis's client timeouts, MAIL_TIMEOUT_SECONDS, Giphy's), so the doctor answers
even when the thing it asks about hangs. Exit status 1 if any check failed, so a
script or a deploy step can stop on it.
"""

import smtplib
from collections.abc import Callable
from dataclasses import dataclass

import click
import requests
from flask import current_app
from flask.cli import with_appcontext
from redis.exceptions import RedisError

from app import giphy
from app.extensions import get_redis
from app.ops import health, metrics, redis_connection
from app.ops.metrics import LATE_MAIL_SECONDS
from app.queues import MAILERS

REFUSED_KEY = {401, 403}  # Giphy's answer to a missing, wrong or revoked key
# What to do about each FAIL, in the words a newcomer needs.
REMEDIES = {
    "redis": "start Redis (make dev starts one) or fix REDIS_URL",
    "replicas": "every submission is refused until they are back (or lower REDIS_WAIT_REPLICAS)",
    "smtp": "start the mail catcher (make dev does) or fix MAIL_SERVER and MAIL_PORT",
    "workers": "start one with make worker",
    "queues": "mail is late: see the workers line, or add workers (make worker)",
    "scheduler": "start a worker with make worker",
    "cron": "start the Procfile's scheduler line (make dev runs it)",
    "giphy": "until then emails carry offline GIFs",
}


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok' if self.ok else 'FAIL':<4}  {self.name:<9} {self.detail}"


def ok(name: str, detail: str) -> Result:
    return Result(name, True, detail)


def fail(name: str, detail: str) -> Result:
    return Result(name, False, detail)


def redis_address() -> str:
    """Where REDIS_URL points, without the password a URL may carry."""
    return redis_connection.address(get_redis())


def check_redis() -> Result:
    try:
        get_redis().ping()
    except RedisError as exc:
        return fail("redis", f"no answer at {redis_address()} ({exc}): {REMEDIES['redis']}")
    return ok("redis", f"answers at {redis_address()}")


def check_replication() -> Result:
    """The primary, its replicas and (behind Sentinel) the sentinels: enough replicas
    online for REDIS_WAIT_REPLICAS, or every submission would be refused."""
    shape = redis_connection.topology(get_redis())
    wanted = current_app.config["REDIS_WAIT_REPLICAS"]
    online = [r for r in shape["replicas"] if r["state"] == "online"]
    lags = ", ".join(f"{r['address']} lag {r['lag']} s" for r in online)
    detail = f"primary {shape['primary']}, {len(online)} replicas" + (f" ({lags})" if lags else "")
    if "sentinels" in shape:
        seen = shape["sentinels"]
        detail += f"; {seen['answering']} of {seen['configured']} sentinels answer"
        detail += f", quorum {shape['quorum']}"
    if not shape["replicas"] and "sentinels" not in shape and not wanted:
        return ok("replicas", "none: one Redis, nothing to fail over to (REDIS_WAIT_REPLICAS=0)")
    if len(online) < wanted:
        return fail(
            "replicas", f"{detail}: fewer than REDIS_WAIT_REPLICAS={wanted}; {REMEDIES['replicas']}"
        )
    return ok("replicas", detail)


def check_smtp() -> Result:
    """Connect, EHLO, NOOP, QUIT: the server answers SMTP, not just a TCP connect.
    No STARTTLS and no login: this checks that mail can get there, nothing is sent."""
    config = current_app.config
    host, port = config["MAIL_SERVER"], config["MAIL_PORT"]
    where, remedy = f"{host}:{port}", REMEDIES["smtp"]
    smtp_class = smtplib.SMTP_SSL if config["MAIL_USE_SSL"] else smtplib.SMTP
    try:
        # smtplib raises SMTPConnectError when the greeting is not 220
        with smtp_class(host, port, timeout=config["MAIL_TIMEOUT_SECONDS"]) as smtp:
            for step in (smtp.ehlo, smtp.noop):
                code, message = step()
                if code != 250:
                    answer = f"{code} {message.decode(errors='replace')}"
                    return fail("smtp", f"{where} answered {answer}: {remedy}")
    except OSError as exc:  # refused, timed out, not SMTP (smtplib's errors are OSErrors)
        return fail("smtp", f"no SMTP answer at {where} ({exc}): {remedy}")
    return ok("smtp", f"{where} answers EHLO and NOOP")


def check_workers() -> Result:
    count = health.live_workers(get_redis())
    if not count:
        return fail(
            "workers", f"none live, so queued thoughts are never sent: {REMEDIES['workers']}"
        )
    return ok("workers", f"{count} live")


def check_queues() -> Result:
    """Each queue's waiting jobs and the age of the oldest (app/ops/metrics.py): mail that
    has waited longer than the latency alert allows (ops/prometheus/alerts.yml) fails."""
    stats = metrics.queue_stats(get_redis())
    detail = "; ".join(f"{q.name} {q.depth} waiting, oldest {q.latency:.0f} s" for q in stats)
    mail = next(q for q in stats if q.name == MAILERS)
    if mail.latency > LATE_MAIL_SECONDS:
        return fail("queues", f"{detail}: {REMEDIES['queues']}")
    return ok("queues", detail)


def check_scheduler() -> Result:
    locks = health.scheduler_locks(get_redis())
    missing = [name for name, held in locks.items() if not held]
    if missing:
        held = f"no RQ scheduler holds {', '.join(missing)}"
        return fail("scheduler", f"{held}, so retries never fire: {REMEDIES['scheduler']}")
    return ok("scheduler", "RQ's scheduler holds every queue (retries will fire)")


def check_cron() -> Result:
    if not health.cron_schedulers(get_redis()):
        message = f"no cron scheduler, so stuck thoughts are never swept: {REMEDIES['cron']}"
        return fail("cron", message)
    return ok("cron", "the cron scheduler is running (the sweeper runs every minute)")


def check_giphy() -> Result:
    """One real request with the key, through the client the jobs use."""
    key = current_app.config["GIPHY_API_KEY"]
    if not key:
        return ok("giphy", "no GIPHY_API_KEY: GIFs come from the offline set, that is fine")
    fallback = REMEDIES["giphy"]
    try:
        giphy.translate("hello", key)
    except LookupError:
        pass  # Giphy answered, found nothing: the key works
    except requests.HTTPError as exc:
        status = exc.response.status_code
        if status in REFUSED_KEY:
            return fail(
                "giphy", f"Giphy refused the key (HTTP {status}): check GIPHY_API_KEY; {fallback}"
            )
        return fail("giphy", f"Giphy answered HTTP {status}: try later; {fallback}")
    except (requests.RequestException, ValueError, TypeError) as exc:
        reason = "timed out" if isinstance(exc, requests.Timeout) else type(exc).__name__
        return fail("giphy", f"could not ask Giphy ({reason}): check GIPHY_API_URL; {fallback}")
    return ok("giphy", "the key works")


def needs_redis(check: Callable[[], Result], name: str) -> Callable[[], Result]:
    """A check that reads Redis fails with one plain line, not a traceback, when it is down."""

    def run() -> Result:
        try:
            return check()
        except RedisError:
            return fail(name, "cannot tell while Redis does not answer (see above)")

    return run


CHECKS: list[Callable[[], Result]] = [
    check_redis,
    needs_redis(check_replication, "replicas"),
    check_smtp,
    needs_redis(check_workers, "workers"),
    needs_redis(check_queues, "queues"),
    needs_redis(check_scheduler, "scheduler"),
    needs_redis(check_cron, "cron"),
    check_giphy,
]


@click.command("doctor")
@with_appcontext
def doctor_command() -> None:
    """Check Redis, the mail server, the workers, the schedulers and Giphy; exit 1 on a FAIL."""
    results = [check() for check in CHECKS]
    for result in results:
        click.echo(result.line())
    if not all(result.ok for result in results):
        raise click.exceptions.Exit(1)
