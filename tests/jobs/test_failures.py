"""jobs/failures.py's classification, one exception at a time.

Every SMTP refusal here is the exception smtplib itself raised, talking to the
faulty sink (harness/faulty_smtp_sink.py) that gave the reply at the stage named;
the rest are raised by the library that raises them in the job (the email package,
Flask-Mail, the socket). Only AUTH refusals are built by hand, with the arguments
smtplib.SMTP.auth raises them with, as the sink offers no AUTH to refuse.
The jobs' tests (test_retries.py, test_smtp_faults.py) check what each kind does.
"""

import email.errors
import smtplib
import socket
from collections.abc import Callable
from email.message import EmailMessage
from email.mime.text import MIMEText

import flask
import flask_mail
import pytest

from harness.faulty_smtp_sink import FaultySmtpSink
from harness.ports import free_port
from jobs import failures
from jobs.failures import CONFIGURATION, PERMANENT, TRANSIENT

ADA, BOB = "ada@example.com", "bob@example.com"


def raised(action: Callable[[], object]) -> BaseException:
    """The exception ``action`` raises (and fail the test if it raises none)."""
    try:
        action()
    except Exception as exc:  # any one: which it is, is what the tests look at
        return exc
    pytest.fail("nothing was raised")


def refused(sink: FaultySmtpSink, timeout: float = 5, **faults) -> BaseException:
    """Set the sink's faults, send one email to Ada and Bob, and return what smtplib raised."""
    for name, value in faults.items():
        setattr(sink, name, value)

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=timeout) as client:
            client.sendmail("app@example.com", [ADA, BOB], b"Subject: hi\r\n\r\nhello\r\n")

    return raised(send)


def auth_refused(code: int, text: bytes) -> smtplib.SMTPAuthenticationError:
    return smtplib.SMTPAuthenticationError(code, text)  # as smtplib.SMTP.auth raises it


# -- SMTP replies: the code and the stage decide ------------------------------------


def fault_id(faults: dict) -> str:
    """`data_replies-554`, `rcpt_replies-550-451`: the stage and the codes given."""
    [(stage, replies)] = faults.items()
    replies = [r for rs in replies.values() for r in rs] if isinstance(replies, dict) else replies
    return "-".join([stage, *(reply[:3] for reply in replies)])


@pytest.mark.parametrize(
    ("faults", "expected", "expected_cause"),
    [
        # After DATA: 5xx is this message refused, 4xx "try later", 552 a size limit.
        ({"data_replies": ["554 5.6.0 Message content rejected"]}, PERMANENT, None),
        ({"data_replies": ["550 5.7.1 Message refused as spam"]}, PERMANENT, None),
        ({"data_replies": ["451 4.3.0 Queue full, try later"]}, TRANSIENT, None),
        ({"data_replies": ["452 4.3.1 Insufficient storage"]}, TRANSIENT, None),
        ({"data_replies": ["552 5.3.4 Message too big"]}, CONFIGURATION, "SMTPDataError 552"),
        # At RCPT TO: every recipient refused for good, or some only for now.
        (
            {"rcpt_replies": {ADA: ["550 5.1.1 No user"], BOB: ["553 5.1.3 Bad"]}},
            PERMANENT,
            None,
        ),
        (
            {"rcpt_replies": {ADA: ["550 5.1.1 No user"], BOB: ["451 4.3.0 Busy"]}},
            TRANSIENT,
            None,
        ),
        ({"rcpt_replies": {ADA: ["451 4.3.0 Busy"], BOB: ["452 4.2.2 Full"]}}, TRANSIENT, None),
        # At MAIL FROM: the sender is our setting; a 4xx there is only for now.
        (
            {"mail_from_replies": ["550 5.7.1 Sender not allowed"]},
            CONFIGURATION,
            "SMTPSenderRefused 550",
        ),
        (
            {"mail_from_replies": ["530 5.7.0 Authentication required"]},
            CONFIGURATION,
            "SMTPSenderRefused 530",
        ),
        ({"mail_from_replies": ["451 4.7.1 Greylisted"]}, TRANSIENT, None),
    ],
    ids=lambda value: fault_id(value) if isinstance(value, dict) else None,
)
def test_an_smtp_refusal_is_classified_by_its_code_and_stage(
    smtp_sink, faults, expected, expected_cause
):
    exc = refused(smtp_sink, **faults)

    assert failures.kind(exc) == expected
    assert failures.describe(exc).startswith(f"{expected}: {type(exc).__name__}: ")
    if expected_cause is not None:  # what a configuration flag is raised once for
        assert failures.cause(exc) == expected_cause


def test_the_smtp_exceptions_are_the_ones_the_stages_raise(smtp_sink):
    """The table above means what it says only if each fault reached smtplib at its
    stage: DATA refusals as SMTPDataError, RCPT as SMTPRecipientsRefused, MAIL FROM
    as SMTPSenderRefused."""
    assert type(refused(smtp_sink, data_replies=["554 5.6.0 No"])) is smtplib.SMTPDataError
    rcpt = refused(smtp_sink, rcpt_replies={ADA: ["550 No"], BOB: ["451 Later"]})
    assert type(rcpt) is smtplib.SMTPRecipientsRefused
    assert rcpt.recipients == {ADA: (550, b"No"), BOB: (451, b"Later")}
    sender = refused(smtp_sink, mail_from_replies=["550 5.7.1 No"])
    assert type(sender) is smtplib.SMTPSenderRefused and sender.smtp_code == 550


@pytest.mark.parametrize("code", [530, 534, 535])
def test_authentication_refused_is_the_setup_s_fault(code):
    exc = auth_refused(code, b"5.7.8 Authentication credentials invalid")

    assert failures.kind(exc) == CONFIGURATION
    assert failures.cause(exc) == f"SMTPAuthenticationError {code}"


def test_a_server_without_what_we_ask_of_it_is_the_setup_s_fault(smtp_sink):
    """MAIL_USE_TLS against a server that offers no STARTTLS fails every email alike."""

    def starttls() -> None:
        with smtplib.SMTP("127.0.0.1", smtp_sink.port, timeout=5) as client:
            client.starttls()

    exc = raised(starttls)

    assert isinstance(exc, smtplib.SMTPNotSupportedError)
    assert failures.kind(exc) == CONFIGURATION
    assert failures.cause(exc) == "SMTPNotSupportedError"  # no code to add


# -- no answer at all: worth another try ---------------------------------------------


def test_a_refused_connection_is_transient():
    closed_port = free_port()
    exc = raised(lambda: smtplib.SMTP("127.0.0.1", closed_port, timeout=5))

    assert isinstance(exc, ConnectionRefusedError)
    assert failures.kind(exc) == TRANSIENT
    assert failures.cause(exc) == "ConnectionRefusedError"


def test_a_hang_up_is_transient(smtp_sink):
    exc = refused(smtp_sink, drop_next=1)

    assert isinstance(exc, smtplib.SMTPServerDisconnected)
    assert failures.kind(exc) == TRANSIENT


def test_a_server_too_slow_to_answer_is_transient(smtp_sink):
    """smtplib reports a read that timed out as a disconnection; the socket itself
    raises TimeoutError (as a send that timed out does)."""
    exc = refused(smtp_sink, timeout=0.2, step_delay=1.0)  # MAIL FROM answered too late
    with socket.create_connection(("127.0.0.1", smtp_sink.port), timeout=5) as sock:
        sock.recv(1024)  # the greeting; then the sink waits for a command forever
        sock.settimeout(0.05)
        silent = raised(lambda: sock.recv(1024))

    assert failures.kind(silent) == TRANSIENT and isinstance(silent, TimeoutError)
    assert failures.kind(exc) == TRANSIENT


# -- data the email library will never write: no retry can fix it --------------------


def bad_header() -> BaseException:
    """Flask-Mail refuses a header with a line break (a header injection)."""
    app = flask.Flask(__name__)
    app.config.update(MAIL_SUPPRESS_SEND=True, MAIL_DEFAULT_SENDER="app@example.com")
    mail = flask_mail.Mail(app)
    with app.app_context():
        message = flask_mail.Message(subject="Hi\nBcc: eve@example.com", recipients=[ADA])
        return raised(lambda: mail.send(message))


def header_with_a_newline() -> BaseException:
    message = EmailMessage()
    return raised(lambda: message.__setitem__("To", "ada@example.com\nBcc: eve@example.com"))


def address_not_in_ascii(sink: FaultySmtpSink) -> BaseException:
    def send() -> None:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as client:
            client.sendmail("app@example.com", ["üser@example.com"], b"Subject: hi\r\n\r\nhi\r\n")

    return raised(send)


def subpart_of_a_leaf() -> BaseException:
    return raised(lambda: MIMEText("hello").attach(MIMEText("again")))


@pytest.mark.parametrize(
    ("make", "expected_type"),
    [
        (lambda sink: bad_header(), flask_mail.BadHeaderError),
        (lambda sink: header_with_a_newline(), ValueError),
        (address_not_in_ascii, UnicodeEncodeError),
        (lambda sink: subpart_of_a_leaf(), email.errors.MessageError),
    ],
    ids=["BadHeaderError", "ValueError", "UnicodeEncodeError", "MessageError"],
)
def test_data_the_mailer_cannot_write_is_permanent(smtp_sink, make, expected_type):
    exc = make(smtp_sink)

    assert isinstance(exc, expected_type)
    assert failures.kind(exc) == PERMANENT


# -- describe(): one line for the page and the logs ----------------------------------


def test_describe_names_the_kind_the_type_and_the_server_s_words(smtp_sink):
    exc = refused(smtp_sink, data_replies=["554 5.6.0 Message content rejected"])

    assert failures.describe(exc) == (
        "permanent: SMTPDataError: (554, b'5.6.0 Message content rejected')"
    )


def test_describe_an_exception_without_words_uses_its_name():
    assert failures.describe(bad_header()) == "permanent: BadHeaderError: BadHeaderError"


def test_describe_nothing_is_an_unknown_error():
    """A job can die without an exception (a killed work horse): still one line."""
    assert failures.describe(None) == "unknown error"
    assert failures.kind(None) == TRANSIENT


def test_describe_is_cut_to_500_characters(smtp_sink):
    """It is stored with the submission and shown on its page: a server's long reply
    must not bloat either."""
    exc = refused(smtp_sink, data_replies=["554 5.6.0 " + "x" * 2000])

    line = failures.describe(exc)

    assert len(line) == 500
    assert line.startswith("permanent: SMTPDataError: (554, b'5.6.0 xxx")
