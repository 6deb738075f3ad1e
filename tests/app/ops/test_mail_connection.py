"""app/ops/mail_connection.py: a worker keeps its SMTP connection for the next email, and a kept
connection that the server closed meanwhile costs a reconnect, never an email."""

import gc
import smtplib
import time
import warnings

import pytest
import requests
from flask_mail import Message
from werkzeug.utils import import_string

from app.extensions import DeliveryUnknown, mail
from app.ops.mail_connection import OVERRIDDEN
from harness.pinned import assert_unchanged
from harness.polling import wait_for
from tests.mailcatcher.helpers import MailcatcherProcess


def message(n: int) -> Message:
    return Message(subject=f"n{n}", recipients=[f"user{n}@example.com"], body="hello")


@pytest.fixture
def send(app):
    def send(*numbers: int) -> None:
        with app.app_context():
            for n in numbers:
                mail.send(message(n))

    yield send
    if mail.kept.host is not None:  # leave no kept connection to the next test's server
        mail.kept.host.close()
        mail.kept.host = None


def test_emails_in_a_row_share_one_connection(send, smtp_sink):
    send(1, 2, 3)

    assert [m["To"] for m in smtp_sink.wait_for(3)] == [f"user{n}@example.com" for n in (1, 2, 3)]
    assert len(smtp_sink.connections) == 1


def test_keepalive_zero_opens_one_connection_per_email(app, send, smtp_sink):
    app.config["MAIL_KEEPALIVE_SECONDS"] = 0
    send(1, 2)

    assert len(smtp_sink.wait_for(2)) == 2
    assert len(smtp_sink.connections) == 2


def test_a_connection_idle_past_the_keepalive_is_not_reused(app, send, smtp_sink):
    app.config["MAIL_KEEPALIVE_SECONDS"] = 0.2
    send(1)
    time.sleep(0.3)
    send(2)

    assert len(smtp_sink.wait_for(2)) == 2
    assert len(smtp_sink.connections) == 2


def test_a_kept_connection_the_server_closed_is_replaced_and_the_email_sent_once(send, smtp_sink):
    send(1)
    smtp_sink.hang_up_all()
    wait_for(lambda: smtp_sink.connections[0].is_closing(), 5, "the hang-up")

    send(2)

    assert [m["To"] for m in smtp_sink.wait_for(2)] == ["user1@example.com", "user2@example.com"]
    assert len(smtp_sink.connections) == 2


def test_a_kept_connection_that_drops_after_the_message_is_not_resent(send, smtp_sink):
    """Reconnecting is only safe before the message went out: here it has, so the
    outcome is unknown, and sending again could deliver it twice."""
    send(1)
    smtp_sink.answer_delay = 5  # the message is kept, its 250 never comes in time
    smtp_sink.on_accept = smtp_sink.hang_up_all

    with pytest.raises(DeliveryUnknown):
        send(2)

    time.sleep(0.5)  # room for a resend to arrive, if there were one
    assert [m["To"] for m in smtp_sink.messages] == ["user1@example.com", "user2@example.com"]


def test_a_fresh_connection_that_fails_is_an_error_not_a_retry(send, smtp_sink):
    smtp_sink.drop_next = 2  # hang up at RCPT, twice

    with pytest.raises(OSError):
        send(1)

    assert smtp_sink.drop_next == 1 and smtp_sink.messages == []


def test_a_kept_connection_the_mail_catcher_closed_with_421_is_replaced(make_app, tmp_path):
    """The mail catcher ends a session idle too long with `421` (mailcatcher/smtp.py),
    which the next MAIL reads as its answer: a reconnect, not a failed attempt."""
    catcher = MailcatcherProcess("--smtp-idle-timeout", "0.5", log_dir=tmp_path).start()
    app = make_app(MAIL_PORT=catcher.smtp_port)
    try:
        with app.app_context():
            mail.send(message(1))
            time.sleep(1.5)  # past the catcher's idle timeout, within our keepalive (30 s)
            mail.send(message(2))
        caught = requests.get(f"{catcher.url}/messages", timeout=5).json()
        assert sorted(m["recipients"][0] for m in caught) == [
            "<user1@example.com>",
            "<user2@example.com>",
        ]
    finally:
        if mail.kept.host is not None:
            mail.kept.host.close()
            mail.kept.host = None
        catcher.stop()


@pytest.mark.parametrize("member", sorted(OVERRIDDEN))
def test_every_library_member_the_connection_replaces_is_still_there(member):
    """A renamed method would leave our version unused; a changed signature would break it."""
    owner, name = member.rsplit(".", 1)
    assert_unchanged(import_string(owner), name, OVERRIDDEN[member])


def test_a_connection_that_fails_its_setup_is_closed(make_app, smtp_sink):
    """MAIL_USE_TLS against a server that offers no STARTTLS: the connection made for the
    email is closed, not left for the garbage collector to find open in a later test."""
    app = make_app(MAIL_USE_TLS=True)
    gc.collect()  # nothing of an earlier test's left to collect below
    with app.app_context(), pytest.raises(smtplib.SMTPNotSupportedError):
        mail.send(message(1))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []
