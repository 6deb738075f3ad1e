"""The HTML side: the form, and a page per submission that follows its job."""

from flask import Blueprint, abort, redirect, render_template, url_for
from werkzeug.wrappers import Response

from app import submissions, thoughts
from app.extensions import get_redis
from app.forms import ThoughtForm
from app.limits import limit_submissions

bp = Blueprint("main", __name__)


@bp.get("/")
def new_thought() -> str:
    return render_template("thoughts/new.html", form=ThoughtForm())


@bp.post("/")
@limit_submissions
def create_thought() -> Response | tuple[str, int]:
    form = ThoughtForm()
    if not form.validate():
        return render_template("thoughts/new.html", form=form), 422
    submission = thoughts.accept(form.email.data, form.thought.data)
    # 303: the browser follows with a GET, so a reload never re-submits.
    return redirect(url_for("main.show_thought", submission_id=submission.id), code=303)


@bp.get("/thoughts/<submission_id>")
def show_thought(submission_id: str) -> str:
    submission = submissions.load(get_redis(), submission_id)
    if submission is None:
        abort(404)
    return render_template("thoughts/show.html", submission=submission)
