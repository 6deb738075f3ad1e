"""Which failures are worth a retry (transient) and which are not (permanent).

The articles' rule: retry what is transient, stop on what will fail the same way
every time. An SMTP reply code says which: 4xx means "try again later", 5xx
means "this will not work" (RFC 5321, section 4.2.1).
"""

import smtplib

from flask_mail import BadHeaderError


class InvalidSubmission(Exception):
    """The stored data cannot make an email (no retry can fix it)."""


def is_permanent(exc: BaseException | None) -> bool:
    if isinstance(exc, InvalidSubmission | BadHeaderError):
        return True
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    return False  # refused or dropped connections, 4xx, timeouts, a busy lock, a dead worker


def describe(exc: BaseException | None) -> str:
    """One line for the submission page and the logs."""
    if exc is None:
        return "unknown error"
    kind = "permanent" if is_permanent(exc) else "transient"
    text = str(exc) or type(exc).__name__
    return f"{kind}: {type(exc).__name__}: {text}"[:500]
