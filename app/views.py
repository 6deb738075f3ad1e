"""The HTML side: the form, and a page per submission that follows its job."""

from urllib.parse import quote

from flask import Blueprint, abort, current_app, redirect, render_template, session, url_for
from werkzeug.wrappers import Response

from app import journey, submissions, thoughts, timing
from app.extensions import get_redis
from app.forms import ThoughtForm
from app.guards.privacy import hide_address, mask_email
from app.queues import MAILERS
from app.rate_limits import take_allowance

bp = Blueprint("main", __name__)

# Session key carrying the form post's own time over the redirect to the page.
POSTED = "posted"
# The email's subject holds the thought (app/mailer.py); this much of it finds the email.
SEARCH_CHARS = 40


@bp.get("/")
def new_thought() -> str:
    return render_template("thoughts/new.html", form=ThoughtForm())


@bp.post("/")
def create_thought() -> Response | tuple[str, int]:
    form = ThoughtForm()
    if not form.validate():
        return render_template("thoughts/new.html", form=form), 422
    take_allowance(form.email.data, form.send_at.moment)
    submission = thoughts.accept(form.email.data, form.thought.data, form.send_at.moment)
    # In the signed session cookie, not Redis: the page after the redirect shows it once.
    session[POSTED] = {"id": submission.id, "ms": timing.elapsed_ms()}
    # 303: the browser follows with a GET, so a reload never re-submits.
    return redirect(url_for("main.show_thought", submission_id=submission.id), code=303)


@bp.get("/thoughts/<submission_id:submission_id>")
def show_thought(submission_id: str) -> str:
    redis = get_redis()
    submission = submissions.load(redis, submission_id)
    if submission is None:
        abort(404)
    events = submissions.journey(redis, submission_id)
    return render_template(
        "thoughts/show.html",
        submission=submission,
        final=submissions.is_final(submission),
        masked_email=mask_email(submission.email),
        last_error=hide_address(submission.last_error, submission.email),
        journey=journey.journey_json(submission, events),
        queue_wait=journey.queue_wait(submission, events),
        queue=MAILERS,
        post_ms=_pop_post_ms(submission_id),
        dashboard_on=_dashboard_on(),
        dashboard_job_url=_dashboard_job_url(submission.job_id),
        mail_search_url=_mail_search_url(submission.thought),
    )


def _pop_post_ms(submission_id: str) -> float | None:
    """The form post's time, on the page that post redirected to only (and only once)."""
    posted = session.pop(POSTED, None)
    if isinstance(posted, dict) and posted.get("id") == submission_id:
        return posted.get("ms")
    return None


def _dashboard_on() -> bool:
    """app/dashboard.py mounts rq-dashboard only when DASHBOARD_PASSWORD is set."""
    return "rq_dashboard" in current_app.blueprints


def _dashboard_job_url(job_id: str) -> str | None:
    if not job_id or not _dashboard_on():
        return None
    return url_for("rq_dashboard.job_view", instance_number=0, job_id=job_id)


def _mail_search_url(thought: str) -> str:
    """The mail catcher's inbox, searching for this thought (its inbox.js reads #search=)."""
    base = current_app.config["MAILCATCHER_URL"].rstrip("/")
    return f"{base}/#search={quote(thought[:SEARCH_CHARS].strip(), safe='')}"
