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
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, RateLimitItemPerDay, parse_many

from app import keys

limiter = Limiter(key_func=get_remote_address, headers_enabled=True)

LIMIT_SETTINGS = ("RATELIMIT_PER_CLIENT", "RATELIMIT_PER_RECIPIENT")
SCOPE = (keys.PREFIX, "submissions")
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
    would let parallel requests all pass before any of them was counted. A request
    that one limit refuses gives back what it took from the others, so a refusal
    costs nobody anything: a client past its own limit cannot use up the allowance
    of every address it names.
    """
    if not current_app.config["RATELIMIT_ENABLED"]:
        return
    taken: list[tuple[RateLimitItem, str]] = []
    try:
        for limit, key, refusal in _counts(mailbox(email), send_at or datetime.now(UTC)):
            taken.append((limit, key))
            if not limiter.limiter.hit(limit, *SCOPE, key):
                raise refusal()
    except TooManyThoughts:
        for limit, key in taken:  # the refused count included: it was made too
            limiter.limiter.hit(limit, *SCOPE, key, cost=-1)
        raise


def _counts(inbox: str, due: datetime) -> Iterator[tuple[RateLimitItem, str, Callable]]:
    """What one submission counts against, the client's own limit first: each limit,
    its counter's key, and the refusal to raise when it is full."""
    config = current_app.config
    keys = {
        "RATELIMIT_PER_CLIENT": f"client:{get_remote_address()}",
        "RATELIMIT_PER_RECIPIENT": f"recipient:{inbox}",
    }
    for setting, key in keys.items():
        for limit in parse_many(config[setting]):
            yield limit, key, partial(_refused_for_now, limit, key)
    for limit in parse_many(config["RATELIMIT_PER_RECIPIENT"]):
        yield _due_count(limit, inbox, due)


def _refused_for_now(limit: RateLimitItem, key: str) -> TooManyThoughts:
    reset = limiter.limiter.get_window_stats(limit, *SCOPE, key).reset_time
    return TooManyThoughts(limit, max(1, round(reset - time.time())))


def _due_count(
    limit: RateLimitItem, inbox: str, due: datetime
) -> tuple[RateLimitItem, str, Callable]:
    """The recipient's window (a clock minute for "5 per minute") that holds the due
    moment: a full window refuses, whenever the asking happens."""
    window = int(due.timestamp()) // limit.get_expiry()
    key = f"due:{inbox}:{limit.get_expiry()}:{window}"
    window_ends = (window + 1) * limit.get_expiry()

    def refusal() -> TooManyThoughts:
        return TooManyThoughts(limit, max(1, round(window_ends - time.time())), when_due=True)

    return RateLimitItemPerDay(limit.amount, DUE_COUNT_DAYS), key, refusal
