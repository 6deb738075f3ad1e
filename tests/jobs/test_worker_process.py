"""Real `rq worker` processes, started with the Procfile's command line."""

import pytest
from rq import Queue
from rq.registry import StartedJobRegistry

from app import submissions
from harness.polling import wait_for
from harness.submissions import submit
from jobs.gif_sender import enqueue_gif_email

pytestmark = pytest.mark.slow


@pytest.fixture(params=["on", "off"], ids=["tuned", "plain"])
def app_config(app_config, request):
    """A mailer slow enough (1 s) that three workers' runs of one job overlap: only
    the lock keeps them from all sending before any of them sets `sent`. The pool's
    tuned workers and the plain reference ones (WORKER_TUNING) alike."""
    return {**app_config, "MAILER_DELAY_SECONDS": 1, "WORKER_TUNING": request.param}


def drained(redis) -> bool:
    queue = Queue("mailers", connection=redis)
    return queue.count == 0 and StartedJobRegistry(queue=queue).count == 0


def test_a_real_worker_delivers_a_form_submission(thought_form, rq_workers, smtp_sink, redis):
    rq_workers.start(1)
    location = thought_form.submit(email="ada@example.com", thought="hello worker").headers[
        "Location"
    ]

    [message] = smtp_sink.wait_for(1)
    assert message["To"] == "ada@example.com"
    wait_for(lambda: drained(redis), 30, "job did not finish")
    stored = submissions.load(redis, location.rsplit("/", 1)[-1])
    assert (stored.status, stored.attempts) == ("sent", 1)


def test_fifty_enqueues_across_three_workers_send_one_email(app, rq_workers, smtp_sink, redis):
    [submission_id] = submit(app)
    with app.app_context():
        for _ in range(49):
            enqueue_gif_email(submission_id)

    rq_workers.start(3)
    wait_for(lambda: drained(redis), 60, "jobs did not finish")

    assert len(smtp_sink.messages) == 1
    stored = submissions.load(redis, submission_id)
    assert (stored.status, stored.attempts) == ("sent", 1)
