"""The Submission record: one Redis hash per thought (its keys: app/keys.py).

States: (scheduled ->) queued -> sending -> sent, or
failed; a failed attempt that will be retried goes back to queued. `unconfirmed`:
the mail server took the message but never answered, so it is not sent again.
`cancelled`: a person cancelled or deleted its job.

Which states are final is said once, here (CLOSED and FINAL), and every change of
state honours it: starting an attempt, recording a failed one, the sweeper,
cancelling, the status page and the API.

Beside each hash, a short list of timestamped events (the submission's journey)
shows a learner where the time went. Each event is queued in the same pipeline
as the state change it describes: both land together, in one round trip.
"""

import json
import re
import secrets
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum

from flask import current_app, has_app_context
from redis import Redis
from redis.client import Pipeline

from app import keys
from app.config import DEFAULT_RETENTION_DAYS
from app.giphy import Gif


class Status(StrEnum):
    """A submission's states, spelled here only: the Lua scripts below get them as
    arguments, the pages as the template global ``Status`` (app/__init__.py)."""

    SCHEDULED = "scheduled"  # waiting for its send_at
    QUEUED = "queued"  # its job is on the queue (again, after a failed attempt)
    SENDING = "sending"  # a run has started an attempt
    SENT = "sent"
    FAILED = "failed"  # no retry left
    UNCONFIRMED = "unconfirmed"
    CANCELLED = "cancelled"


class Event(StrEnum):
    """What a submission's journey can say happened, spelled here only."""

    ACCEPTED = "accepted"
    ENQUEUED = "enqueued"
    SCHEDULED = "scheduled"
    DELIVERING_NOW = "delivering in the request"  # WORKIT_DELIVERY=now
    STARTED = "started"
    SENT = "sent"
    ATTEMPT_FAILED = "attempt failed"
    UNCONFIRMED = "unconfirmed"
    CANCELLED = "cancelled"
    REQUEUED = "requeued by the sweeper"
    HANDED_BACK = "handed back"  # its worker was stopping before it sent anything


# Closed for good: no run sends it (again), and no failure, sweep or cancel reopens it.
CLOSED = (Status.SENT, Status.UNCONFIRMED, Status.CANCELLED)
# Final: nothing more happens by itself. `failed` (no retry left) is final but not
# closed: a person may requeue its job (the red flag's email says how), and that run
# tries again, safely, since the job is idempotent.
FINAL = (*CLOSED, Status.FAILED)
# A submission enqueued again and again keeps its newest events, not an unbounded list.
JOURNEY_MAX_EVENTS = 50


# What new_id() makes, exactly: 22 URL-safe base64 characters, the last holding the
# 128th and 127th bits and four zero bits (so only A, Q, g or w). Routes accept nothing
# else, so a request cannot name another key (`<id>:journey`) or any other junk.
ID_PATTERN = r"[A-Za-z0-9_-]{21}[AQgw]"
_ID = re.compile(ID_PATTERN)


def new_id() -> str:
    """128 random bits: ids appear in URLs and must not be guessable."""
    return secrets.token_urlsafe(16)


def is_id(value: str) -> bool:
    """Whether ``value`` could have come from new_id(): checked before it reaches Redis."""
    return _ID.fullmatch(value) is not None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def age_seconds(stamp: str) -> float:
    return (datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds()


@dataclass
class Submission:
    id: str
    email: str
    thought: str
    status: str = Status.QUEUED
    created_at: str = ""
    updated_at: str = ""
    attempts: int = 0
    sent: bool = False  # the idempotency flag: set once, after the SMTP server accepted
    sent_at: str = ""
    gif_url: str = ""
    gif_source: str = ""  # "giphy" or "offline"
    gif_note: str = ""  # why the offline set was used, when Giphy was tried
    last_error: str = ""
    job_id: str = ""  # the newest RQ job enqueued for it
    requeues: int = 0  # how often the sweeper found it stuck and enqueued it again
    delivery: str = "later"  # WORKIT_DELIVERY when it was accepted: "later" or "now"
    send_at: str = ""  # when it was asked to go out (UTC, ISO 8601); "" for at once

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes]) -> "Submission":
        data = {k.decode(): v.decode() for k, v in raw.items()}
        data["attempts"] = int(data.get("attempts", 0))
        data["requeues"] = int(data.get("requeues", 0))
        data["sent"] = data.get("sent") == "1"
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_hash(self) -> dict[str, str | int]:
        """The fields as Redis stores them: what from_hash reads back."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**data, "sent": "1" if self.sent else "0"}


def create(
    pipe: Pipeline | Redis,
    email: str,
    thought: str,
    delivery: str = "later",
    send_at: datetime | None = None,
) -> Submission:
    """Queue the write of a new submission (run it in the caller's transaction).

    ``delivery`` is stored so that its page tells what happened to it, even after
    WORKIT_DELIVERY has changed. With ``send_at`` it starts out `scheduled`.
    """
    stamp = now()
    sub = Submission(
        id=new_id(),
        email=email,
        thought=thought,
        status=Status.SCHEDULED if send_at else Status.QUEUED,
        created_at=stamp,
        updated_at=stamp,
        delivery=delivery,
        send_at=send_at.isoformat(timespec="seconds") if send_at else "",
    )
    pipe.hset(keys.submission(sub.id), mapping=sub.to_hash())
    pipe.zadd(keys.PENDING, {sub.id: datetime.fromisoformat(stamp).timestamp()})
    # Stamped like created_at, so the journey's times count from this event.
    record_event(
        pipe, sub.id, Event.ACCEPTED, f"stored by the web request (delivery: {delivery})", stamp
    )
    return sub


def retention_seconds() -> int:
    """RETENTION_DAYS in seconds: how long a finished submission is kept. RQ can run a
    failure callback outside any app (cleaning up after a dead worker): the default then."""
    days = current_app.config["RETENTION_DAYS"] if has_app_context() else DEFAULT_RETENTION_DAYS
    return max(1, round(days * 86400))


def _expire_when_retained(pipe: Pipeline, submission_id: str) -> None:
    """A finished submission and its journey expire after the retention time. Set with
    the final state, in its transaction: no sweep over old keys needed."""
    seconds = retention_seconds()
    pipe.expire(keys.submission(submission_id), seconds)
    pipe.expire(keys.journey(submission_id), seconds)


def load(redis: Redis, submission_id: str) -> Submission | None:
    raw = redis.hgetall(keys.submission(submission_id))
    return Submission.from_hash(raw) if raw else None


def update(redis: Redis | Pipeline, submission_id: str, **changes: str | int) -> None:
    redis.hset(keys.submission(submission_id), mapping={**changes, "updated_at": now()})


def is_closed(submission: Submission) -> bool:
    return submission.sent or submission.status in CLOSED


def is_final(submission: Submission) -> bool:
    return submission.sent or submission.status in FINAL


# Lua for "this hash's submission is closed", with the CLOSED states as the script's
# last arguments: the scripts below test the very list the Python code tests.
_IS_CLOSED = """
local function is_closed(hash, first_closed_arg)
  if redis.call('HGET', hash, 'sent') == '1' then return true end
  local status = redis.call('HGET', hash, 'status')
  for i = first_closed_arg, #ARGV do
    if ARGV[i] == status then return true end
  end
  return false
end
"""


def begin_attempt(redis: Redis, submission_id: str) -> Submission | None:
    """Load the submission and, unless it is closed, start its next attempt (count it,
    mark it `sending`, note it in the journey): one atomic round trip.

    Returns the submission as it stands after that: None if there is none; a closed
    one unchanged (nothing to do); otherwise `sending`, with ``attempts`` counting
    this attempt.
    """
    both = (keys.submission(submission_id), keys.journey(submission_id))
    entry = _event(Event.STARTED, "attempt {attempt}")
    args = (now(), entry, JOURNEY_MAX_EVENTS, Status.SENDING, *CLOSED)
    raw = redis.register_script(_BEGIN_ATTEMPT)(both, args)
    return Submission.from_hash(dict(zip(raw[::2], raw[1::2], strict=True))) if raw else None


# KEYS: the hash, the journey. ARGV: now, the event, the journey's cap, `sending`, *CLOSED.
# Called by EVALSHA: Redis compiles it once, not on every job.
_BEGIN_ATTEMPT = (
    _IS_CLOSED
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
if not is_closed(KEYS[1], 5) then
  local attempt = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
  redis.call('HSET', KEYS[1], 'status', ARGV[4], 'updated_at', ARGV[1])
  redis.call('RPUSH', KEYS[2], (string.gsub(ARGV[2], '{attempt}', attempt, 1)))
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
end
return redis.call('HGETALL', KEYS[1])
"""
)


def hand_back(redis: Redis, submission_id: str) -> bool:
    """Take back the attempt a run began and did not make: its worker was stopping
    before it sent anything, and put its job back on the queue (jobs/runtime/shutdown.py).
    `sending` goes back to `queued`, and the attempt no longer counts. Any other state
    is left alone, and so is `sending` while a run holds the submission's lock: that
    attempt is the other run's (the run handed back released its lock on the way out,
    or was handed back while waiting for it). Returns whether it changed anything."""
    involved = (keys.submission(submission_id), keys.journey(submission_id))
    involved += (keys.lock(submission_id),)
    entry = _event(Event.HANDED_BACK, "the worker stopped before sending: back on the queue")
    args = (Status.SENDING, Status.QUEUED, now(), entry, JOURNEY_MAX_EVENTS)
    return bool(redis.register_script(_HAND_BACK)(involved, args))


# KEYS: the hash, the journey, the lock. ARGV: `sending`, `queued`, now, the event, the cap.
_HAND_BACK = """
if redis.call('HGET', KEYS[1], 'status') ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') > 0 then
  redis.call('HINCRBY', KEYS[1], 'attempts', -1)
end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'updated_at', ARGV[3])
redis.call('RPUSH', KEYS[2], ARGV[4])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[5]), -1)
return 1
"""


def mark_sent(pipe: Pipeline, submission_id: str, gif: Gif) -> None:
    """Queue, in the caller's transaction, the ``sent`` flag (with the GIF used) and the
    submission's removal from the pending list: the job releases its lock in the same
    round trip."""
    update(
        pipe,
        submission_id,
        status=Status.SENT,
        sent="1",
        sent_at=now(),
        gif_url=gif.url,
        gif_source=gif.source,
        gif_note=gif.note,
        last_error="",
    )
    pipe.zrem(keys.PENDING, submission_id)
    record_event(
        pipe, submission_id, Event.SENT, f"the mail server accepted it (GIF: {gif.source})"
    )
    _expire_when_retained(pipe, submission_id)


def mark_unconfirmed(redis: Redis, submission_id: str, error: str) -> bool:
    """The message went out and its answer never came: closed (a retry could make a
    duplicate), with the reason for whoever checks the server."""
    return _close_unless_closed(
        redis, submission_id, Status.UNCONFIRMED, Event.UNCONFIRMED, error, f"not resent: {error}"
    )


def mark_cancelled(redis: Redis, submission_id: str, why: str) -> bool:
    """A person cancelled or deleted its job: closed, unless it was closed already."""
    return _close_unless_closed(redis, submission_id, Status.CANCELLED, Event.CANCELLED, why, why)


def mark_attempt_failed(redis: Redis, submission_id: str, error: str, final: bool) -> bool:
    """Record the error; the submission stays queued (and pending) while a retry is coming.

    One atomic step that refuses to touch a closed submission: a run that failed while
    another one sent the email (or after its own run was left unconfirmed) must not
    set it back to queued, which would send it again, or call mail that was delivered
    dead. Returns whether it recorded anything.
    """
    status = Status.FAILED if final else Status.QUEUED
    outcome = "gave up, no retry left" if final else "a retry is coming"
    detail = f"attempt {{attempt}} failed ({outcome}): {error}"
    return _change_unless_closed(redis, submission_id, status, error, Event.ATTEMPT_FAILED, detail)


def _close_unless_closed(
    redis: Redis, submission_id: str, status: Status, event: Event, why: str, detail: str
) -> bool:
    return _change_unless_closed(redis, submission_id, status, why, event, detail)


def _change_unless_closed(
    redis: Redis, submission_id: str, status: str, error: str, event: str, detail: str
) -> bool:
    """Set a new status with its reason and journey event, in one atomic step that
    leaves a closed submission alone. A final status takes it off the pending list
    and starts its retention clock."""
    involved = (keys.submission(submission_id), keys.PENDING, keys.journey(submission_id))
    final = "1" if status in FINAL else "0"
    entry = _event(event, detail)
    args = (status, error, now(), submission_id, entry, JOURNEY_MAX_EVENTS)
    args += (retention_seconds(), final, *CLOSED)
    return bool(redis.register_script(_CHANGE_UNLESS_CLOSED)(involved, args))


# KEYS: the hash, the pending set, the journey.
# ARGV: status, error, now, id, event, cap, retention in seconds, final (1/0), *CLOSED.
_CHANGE_UNLESS_CLOSED = (
    _IS_CLOSED
    + """
if redis.call('EXISTS', KEYS[1]) == 0 or is_closed(KEYS[1], 9) then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'last_error', ARGV[2], 'updated_at', ARGV[3])
local attempt = redis.call('HGET', KEYS[1], 'attempts') or '0'
redis.call('RPUSH', KEYS[3], (string.gsub(ARGV[5], '{attempt}', attempt, 1)))
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[6]), -1)
if ARGV[8] == '1' then
  redis.call('ZREM', KEYS[2], ARGV[4])
  redis.call('EXPIRE', KEYS[1], ARGV[7])
  redis.call('EXPIRE', KEYS[3], ARGV[7])
end
return 1
"""
)


def record_event(
    pipe: Pipeline | Redis, submission_id: str, event: Event, detail: str = "", at: str = ""
) -> None:
    """Queue one journey event in the caller's pipeline, beside the change it describes.

    The journey is shown to anyone with the link: put no address in ``detail`` (a mail
    server's error can quote one; app/api.py masks it on the way out).
    """
    pipe.rpush(keys.journey(submission_id), _event(event, detail, at))
    pipe.ltrim(keys.journey(submission_id), -JOURNEY_MAX_EVENTS, -1)


def _event(event: str, detail: str, at: str = "") -> str:
    """One journey entry, as stored."""
    return json.dumps({"at": at or now(), "event": event, "detail": detail})


def journey(redis: Redis, submission_id: str) -> list[dict[str, str]]:
    """The submission's events, oldest first: ``{"at", "event", "detail"}`` each."""
    return [json.loads(raw) for raw in redis.lrange(keys.journey(submission_id), 0, -1)]
