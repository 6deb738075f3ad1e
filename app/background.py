"""The one door between the web app and the background jobs.

app/ never imports jobs/. It hands work over through the functions here, which
name the job side by dotted path and import it at the first hand-over; the flow
is one-way: jobs/ builds on app's domain (submissions, the mailer, Giphy), and
app/ only knows the names of the doors. Each side can be read, tested and
changed alone. (The `flask` command line does load jobs/: pyproject.toml's
flask.commands entry point adds jobs/sweeper.py's `requeue-stuck` to every
`flask` run, `flask run` included. That is the command line's doing, not app/'s.)
The job's policy (queue, timeout, retries) stays beside the job, in
jobs/gif_sender.py, and is applied by the door it names.
"""

from datetime import datetime

from redis.client import Pipeline
from werkzeug.utils import import_string

ENQUEUE_GIF_EMAIL = "jobs.gif_sender.enqueue_gif_email"
DELIVER_IN_REQUEST = "jobs.gif_sender.deliver_in_request"


def enqueue_gif_email(submission_id: str, *, pipeline: Pipeline | None = None,
                      at: datetime | None = None):  # fmt: skip
    """Enqueue the email job with its policy, inside ``pipeline`` if given; returns the
    RQ job."""
    return import_string(ENQUEUE_GIF_EMAIL)(submission_id, pipeline=pipeline, at=at)


def deliver_in_request(submission_id: str) -> None:
    """WORKIT_DELIVERY=now: run the job right here; if it fails, it is enqueued."""
    import_string(DELIVER_IN_REQUEST)(submission_id)
