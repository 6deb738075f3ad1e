"""JSON API for scripts and benchmarks: the same intake and records as the form.
Its bodies are read strictly (app/guards/strict_json.py)."""

from typing import Any

from flask import Blueprint, abort, url_for
from werkzeug.datastructures import MultiDict

from app import journey, submissions, thoughts
from app.extensions import get_redis
from app.forms import ThoughtForm
from app.guards import strict_json
from app.rate_limits import take_allowance

bp = Blueprint("api", __name__, url_prefix="/api")
bp.before_request(strict_json.require_json)


@bp.post("/thoughts")
def create_thought() -> tuple[dict[str, Any], int, dict[str, str]]:
    body = strict_json.json_object()
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


@bp.get("/thoughts/<submission_id:submission_id>")
def show_thought(submission_id: str) -> dict[str, Any]:
    redis = get_redis()
    submission = submissions.load(redis, submission_id)
    if submission is None:
        abort(404, "No thought with that id.")
    return journey.as_json(submission, submissions.journey(redis, submission_id))
