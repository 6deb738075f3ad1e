"""jobs/runtime/shutdown.py's parts, in this process: what a handed-back run leaves on its
submission, what a job outside a worker sees, and a loud failure when RQ changes a
member the stopping worker relies on. Stopping real pools: tests/jobs/runtime/test_pool.py."""

import signal
import threading

import pytest
from rq.worker.base import BaseWorker
from werkzeug.utils import import_string

from app import keys, submissions
from app.ops.mail_connection import about_to_send
from app.submissions import Event, Status
from harness.pinned import assert_unchanged
from jobs.gif_sender import send_gif_email
from jobs.runtime import shutdown
from jobs.runtime.shutdown import HANDED_BACK_ON_STOP, OVERRIDDEN, HandedBack


@pytest.mark.parametrize("member", sorted(OVERRIDDEN))
def test_every_rq_member_the_stopping_worker_overrides_is_still_there(member):
    """A renamed method would leave its override unused; a changed signature would break it."""
    assert_unchanged(BaseWorker, member, OVERRIDDEN[member])


def test_a_job_cannot_swallow_its_hand_back():
    """A job's `except Exception` (a fallback, a retry loop) lets it through."""
    assert not issubclass(HandedBack, Exception)


def test_only_the_email_job_is_handed_back_and_its_name_is_real():
    assert {import_string(name) for name in HANDED_BACK_ON_STOP} == {send_gif_email}


def test_the_mail_connection_announces_a_send_to_the_stopping_worker():
    assert shutdown.sending in about_to_send.receivers_for(None)


def test_outside_a_worker_sending_does_nothing():
    shutdown.sending()  # WORKIT_DELIVERY=now: the web request sends, no worker to stop


def test_a_thread_started_with_the_stop_signals_blocked_keeps_them_blocked():
    seen = []
    with shutdown.stop_signals_blocked():
        thread = threading.Thread(target=lambda: seen.append(signal.pthread_sigmask(0, [])))
        thread.start()
    thread.join()
    assert set(seen[0]) >= {signal.SIGINT, signal.SIGTERM}
    assert not set(signal.pthread_sigmask(0, [])) & {signal.SIGINT, signal.SIGTERM}


def test_a_handed_back_run_takes_its_attempt_back(app, redis):
    with app.app_context():
        sub = submissions.create(redis, "ada@example.com", "hi")
        submissions.begin_attempt(redis, sub.id)
        assert submissions.hand_back(redis, sub.id)
    after = submissions.load(redis, sub.id)
    assert (after.status, after.attempts) == (Status.QUEUED, 0)
    assert submissions.journey(redis, sub.id)[-1]["event"] == Event.HANDED_BACK


@pytest.mark.parametrize("status", [Status.QUEUED, Status.SENT, Status.UNCONFIRMED])
def test_a_hand_back_changes_only_a_submission_being_sent(app, redis, status):
    """A run handed back before its attempt began, or after another run closed the
    submission, leaves it as it is."""
    with app.app_context():
        sub = submissions.create(redis, "ada@example.com", "hi")
        submissions.update(redis, sub.id, status=status, attempts=1)
        assert not submissions.hand_back(redis, sub.id)
    after = submissions.load(redis, sub.id)
    assert (after.status, after.attempts) == (status, 1)


def test_a_hand_back_leaves_alone_the_attempt_of_a_run_holding_the_lock(app, redis):
    """Handed back while it waited for the lock, a run must not take back the attempt
    of the run that holds it (and may be sending)."""
    with app.app_context():
        sub = submissions.create(redis, "ada@example.com", "hi")
        submissions.begin_attempt(redis, sub.id)
        redis.set(keys.lock(sub.id), "the other run's token")
        assert not submissions.hand_back(redis, sub.id)
    after = submissions.load(redis, sub.id)
    assert (after.status, after.attempts) == (Status.SENDING, 1)
