"""JSON API for scripts and benchmarks: the same intake and records as the form."""

import json
import re
from datetime import datetime
from itertools import accumulate
from typing import Any

from flask import Blueprint, abort, current_app, request, url_for
from flask.json.provider import DefaultJSONProvider
from werkzeug.datastructures import MultiDict

from app import submissions, thoughts, timing
from app.extensions import get_redis
from app.forms import ThoughtForm
from app.limits import take_allowance
from app.privacy import hide_address
from app.submissions import Event, Submission

bp = Blueprint("api", __name__, url_prefix="/api")

# The API reads one flat object (depth 1). Flask's session cookie goes through the
# same parser (depth 2 or 3), so the bound leaves room for it and for little else:
# Python's parser recurses per level and dies (RecursionError, a 500) near 1,000.
JSON_MAX_DEPTH = 8
# A JSON string, skipped whole (possessive: no backtracking), so that brackets and
# quotes inside it do not count as nesting.
_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_SURROGATE = re.compile("[\ud800-\udfff]")


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing (ValueError, so a 400) what it would otherwise pass on
    to fail later as a 500: nesting deeper than JSON_MAX_DEPTH, and lone surrogates
    (`"\\ud800"` parses to a string that cannot be encoded as UTF-8 for Redis)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        text = s.decode(json.detect_encoding(s), "surrogatepass") if isinstance(s, bytes) else s
        if _depth(text) > JSON_MAX_DEPTH:
            raise ValueError(f"JSON nested deeper than {JSON_MAX_DEPTH} levels")
        value = super().loads(text, **kwargs)
        if _has_surrogate(value):
            raise ValueError("a lone surrogate (such as \\ud800) is not a character")
        return value


def _depth(text: str) -> int:
    """How deep the brackets outside strings go, counted before parsing, so that
    the parser never sees what would exhaust its stack."""
    brackets = re.sub(r"[^\[\]{}]", "", _JSON_STRING.sub("", text))
    return max(accumulate(1 if c in "[{" else -1 for c in brackets), default=0)


def _has_surrogate(value: Any) -> bool:
    """Any key or string holding half a surrogate pair (a whole pair is decoded into
    one character by the parser). Recursion is safe: the depth is bounded first."""
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(map(_has_surrogate, value))
    return False


@bp.before_request
def require_json() -> None:
    """Only application/json is accepted on writes. Browsers cannot send that
    cross-site without a CORS preflight, which is why the API can skip CSRF tokens."""
    if request.method == "POST" and not request.is_json:
        abort(415, "Send a JSON body with Content-Type: application/json.")


@bp.post("/thoughts")
def create_thought() -> tuple[dict[str, Any], int, dict[str, str]]:
    body = json_object()
    fields = {name: body[name] for name in ("email", "thought") if isinstance(body.get(name), str)}
    if body.get("send_at") is not None:
        fields["send_at"] = str(body["send_at"])  # not a string: refused as not a time
    form = ThoughtForm(formdata=MultiDict(fields), meta={"csrf": False})
    form.utc_offset.data = None  # the API's times carry their own offset
    if not form.validate():
        return {"errors": form.errors}, 422, {}
    take_allowance(form.email.data, form.send_at.moment)
    submission = thoughts.accept(form.email.data, form.thought.data, form.send_at.moment)
    url = url_for("api.show_thought", submission_id=submission.id, _external=True)
    body = {"id": submission.id, "status": submission.status, "url": url}
    return body, 202, {"Location": url}


def json_object() -> dict[str, Any]:
    """The body as a JSON object, or 400 with the parser's reason (where the syntax
    broke, or what StrictJSONProvider refused): Flask's get_json would hide it."""
    try:
        body = current_app.json.loads(_whole_body())
    except ValueError as exc:
        abort(400, f"The body must be a JSON object: {exc}.")
    if not isinstance(body, dict):
        abort(400, "The body must be a JSON object.")
    return body


def _whole_body() -> bytes:
    """The body, or 413 past MAX_CONTENT_LENGTH. With a Content-Length, Werkzeug
    refuses up front; a chunked body it silently cuts at the limit (a truncated JSON,
    a misleading 400), and only a read past the limit raises: so read once more."""
    data = request.get_data()
    request.stream.read(1)
    return data


@bp.get("/thoughts/<submission_id:submission_id>")
def show_thought(submission_id: str) -> dict[str, Any]:
    redis = get_redis()
    submission = submissions.load(redis, submission_id)
    if submission is None:
        abort(404, "No thought with that id.")
    return as_json(submission, submissions.journey(redis, submission_id))


def journey_json(submission: Submission, events: list[dict[str, str]]) -> list[dict[str, str]]:
    """Each event with its time since the thought was accepted ("+4 ms"), so that the
    page's first render and its script's re-renders show exactly the same list."""
    return [
        {
            **event,
            "detail": hide_address(event["detail"], submission.email),
            "since_accepted": timing.offset(submission.created_at, event["at"]),
        }
        for event in events
    ]


def queue_wait(submission: Submission, events: list[dict[str, str]]) -> str | None:
    """How long its job waited for a worker ("120 ms"): from its enqueue, or its due
    time if scheduled, to the start of the first attempt. None until one started."""
    enqueued = submission.send_at or _first(events, Event.ENQUEUED)
    started = _first(events, Event.STARTED)
    if not (enqueued and started):
        return None
    waited = datetime.fromisoformat(started) - datetime.fromisoformat(enqueued)
    return timing.format_ms(max(0.0, waited.total_seconds() * 1000))


def _first(events: list[dict[str, str]], name: str) -> str | None:
    return next((event["at"] for event in events if event["event"] == name), None)


def as_json(submission: Submission, events: list[dict[str, str]]) -> dict[str, Any]:
    """What a client may see: never the email address, which the id alone should not reveal."""
    return {
        "id": submission.id,
        "status": submission.status,
        "final": submissions.is_final(submission),  # nothing more will happen by itself
        "job_id": submission.job_id or None,
        "created_at": submission.created_at,
        "updated_at": submission.updated_at,
        "send_at": submission.send_at or None,
        "sent_at": submission.sent_at or None,
        "attempts": submission.attempts,
        "last_error": hide_address(submission.last_error, submission.email) or None,
        "gif": {
            "url": submission.gif_url,
            "source": submission.gif_source,
            "note": submission.gif_note or None,
        }
        if submission.gif_source
        else None,
        "queue_wait": queue_wait(submission, events),
        "journey": journey_json(submission, events),
    }
