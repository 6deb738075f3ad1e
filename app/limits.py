"""Throttling instead of uniqueness: the articles' advice once a job is idempotent.

Two limits on accepting a thought, per client address and per recipient address
(so nobody can flood one inbox from many addresses, or from one address with
`+tag`s). The recipient is counted by the address as it will be delivered
(app/forms.py normalises it: case of the domain, full-width letters, IDNA),
with its `+tag` dropped and its local part case-folded. Provider rules, such as
Gmail ignoring dots, are not applied: they hold for one provider, not for mail.

Every send also counts in the minute it is due (with "5 per minute", at most
five emails to one inbox may fall due in any one clock minute), so a week of
allowance cannot be scheduled for the same second. Only accepted submissions
count: the form and the API take their allowance after the input was found
valid, so a typo costs nothing. Counters live in the same Redis as the jobs,
through Flask-Limiter's storage.
"""

import time
from datetime import UTC, datetime

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, RateLimitItemPerDay, parse_many

limiter = Limiter(key_func=get_remote_address, headers_enabled=True)

LIMIT_SETTINGS = ("RATELIMIT_PER_CLIENT", "RATELIMIT_PER_RECIPIENT")
SCOPE = ("workit", "submissions")
# A due-minute count lives until its minute has surely passed: sends are due within
# a week (app/forms.py), so eight days.
DUE_COUNT_DAYS = 8


class TooManyThoughts(Exception):
    """Over a limit: 429, nothing stored, nothing enqueued. ``when_due``: the limit was
    the recipient's in the window the email would be due in (pick another time)."""

    def __init__(self, limit: RateLimitItem, retry_after: int, when_due: bool = False) -> None:
        super().__init__(str(limit))
        self.limit, self.retry_after, self.when_due = limit, retry_after, when_due


def init_app(app: Flask) -> None:
    """Refuse to start on a limit string that cannot be read: Flask-Limiter would
    silently apply no limit at all."""
    for name in LIMIT_SETTINGS:
        try:
            parse_many(app.config[name])
        except ValueError as exc:
            raise ValueError(
                f"{name}={app.config[name]!r} is not a rate limit ({exc}); "
                "write it like '5 per minute' or '30/hour'"
            ) from exc
    limiter.init_app(app)


def mailbox(address: str) -> str:
    """The inbox an address reaches: case folded, `+tag` dropped (`Ada+x@Ex.com` and
    `ada@ex.com` share one allowance)."""
    local, _, domain = address.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def take_allowance(email: str, send_at: datetime | None = None) -> None:
    """Count one accepted submission against both limits, and against the recipient's
    limit in the window it is due (``send_at``, or now), or raise TooManyThoughts.

    Each count is one atomic increment that also answers "over the limit?": a check
    made before the work and a count made after it (Flask-Limiter's `deduct_when`)
    would let parallel requests all pass before any of them was counted.
    """
    if not current_app.config["RATELIMIT_ENABLED"]:
        return
    config = current_app.config
    keys = {
        "RATELIMIT_PER_RECIPIENT": f"recipient:{mailbox(email)}",
        "RATELIMIT_PER_CLIENT": f"client:{get_remote_address()}",
    }
    for setting, key in keys.items():
        for limit in parse_many(config[setting]):
            if not limiter.limiter.hit(limit, *SCOPE, key):
                reset = limiter.limiter.get_window_stats(limit, *SCOPE, key).reset_time
                raise TooManyThoughts(limit, max(1, round(reset - time.time())))
    _count_when_due(mailbox(email), send_at or datetime.now(UTC))


def _count_when_due(inbox: str, due: datetime) -> None:
    """One count in the recipient's window (a clock minute for "5 per minute") that
    holds the due moment; a full window refuses, whenever the asking happens."""
    for limit in parse_many(current_app.config["RATELIMIT_PER_RECIPIENT"]):
        window = int(due.timestamp()) // limit.get_expiry()
        per_window = RateLimitItemPerDay(limit.amount, DUE_COUNT_DAYS)
        key = f"due:{inbox}:{limit.get_expiry()}:{window}"
        if not limiter.limiter.hit(per_window, *SCOPE, key):
            window_ends = (window + 1) * limit.get_expiry()
            raise TooManyThoughts(limit, max(1, round(window_ends - time.time())), when_due=True)
