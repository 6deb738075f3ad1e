"""Which failures are worth a retry, which are not, and which are the setup's fault.

The articles' rule: retry what is transient, stop on what will fail the same way
every time. An SMTP reply says which by its code (RFC 5321, section 4.2.1: 4xx
"try again later", 5xx "this will not work") and by its stage:

- permanent: the recipient refused at RCPT TO with a 5xx, or this message refused
  after DATA with a 5xx (but 552, a size limit), or the email library refusing the
  submission's data (a ValueError or UnicodeError, such as an address it cannot
  write, accepted before the form refused such addresses): no retry can fix it;
- configuration: authentication refused (530, 534, 535), the sender refused at
  MAIL FROM, a size limit (552), or a server that lacks what we ask of it. Every
  submission will fail the same way until someone fixes the settings, so it is
  retried with backoff and reported once per cause, not once per job;
- transient: everything else (refused or dropped connections, 4xx, timeouts, a
  busy lock, a dead worker).
"""

import smtplib
from email.errors import MessageError

from flask_mail import BadHeaderError

PERMANENT, CONFIGURATION, TRANSIENT = "permanent", "configuration", "transient"
SETUP_CODES = {530, 534, 535, 552}


def kind(exc: BaseException | None) -> str:
    if isinstance(exc, BadHeaderError | MessageError | ValueError):
        return PERMANENT
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return PERMANENT if all(code >= 500 for code in codes) else TRANSIENT
    if isinstance(exc, smtplib.SMTPNotSupportedError | smtplib.SMTPHeloError):
        return CONFIGURATION
    if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500:
        if exc.smtp_code in SETUP_CODES or isinstance(exc, smtplib.SMTPSenderRefused):
            return CONFIGURATION
        return PERMANENT
    return TRANSIENT


def cause(exc: BaseException) -> str:
    """What a configuration error is about, to report it once, e.g. `SMTPSenderRefused 550`."""
    return f"{type(exc).__name__} {getattr(exc, 'smtp_code', '')}".strip()


def describe(exc: BaseException | None) -> str:
    """One line for the submission page and the logs."""
    if exc is None:
        return "unknown error"
    text = str(exc) or type(exc).__name__
    return f"{kind(exc)}: {type(exc).__name__}: {text}"[:500]
