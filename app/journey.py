"""A submission's journey as the status page and the API show it: each event with
its time since the thought was accepted, and how long the job waited for a worker."""

from datetime import datetime
from typing import Any

from app import submissions, timing
from app.guards.privacy import hide_address
from app.submissions import Event, Submission


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
