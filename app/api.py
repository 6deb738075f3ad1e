"""JSON API for scripts and benchmarks: the same intake and records as the form."""

from typing import Any

from flask import Blueprint, abort, request, url_for
from werkzeug.datastructures import MultiDict

from app import submissions, thoughts, timing
from app.extensions import get_redis
from app.forms import ThoughtForm
from app.limits import take_allowance
from app.privacy import hide_address
from app.submissions import Submission

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.before_request
def require_json() -> None:
    """Only application/json is accepted on writes. Browsers cannot send that
    cross-site without a CORS preflight, which is why the API can skip CSRF tokens."""
    if request.method == "POST" and not request.is_json:
        abort(415, "Send a JSON body with Content-Type: application/json.")


@bp.post("/thoughts")
def create_thought() -> tuple[dict[str, Any], int, dict[str, str]]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, "The body must be a JSON object.")
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


@bp.get("/thoughts/<submission_id>")
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


def as_json(submission: Submission, events: list[dict[str, str]]) -> dict[str, Any]:
    """What a client may see: never the email address, which the id alone should not reveal."""
    return {
        "id": submission.id,
        "status": submission.status,
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
        "journey": journey_json(submission, events),
    }
