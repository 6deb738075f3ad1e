"""Release: send a caught message on to a real SMTP server, unchanged.

The relay is set by flags (--release-smtp and friends), never by the request: a
page that can reach the inbox must not be able to make the sink mail anyone through
any server. --release-to limits who it may be released to.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

TIMEOUT_SECONDS = 30
# No DNS look-up; `*.test` addresses pass, as a local test server may want them.
SYNTAX_ONLY = {"check_deliverability": False, "test_environment": True}


class ReleaseRefused(Exception):
    """The request names recipients it may not release to; the message says why."""


@dataclass(frozen=True)
class Relay:
    host: str
    port: int = 25
    starttls: bool = False
    auth: tuple[str, str] | None = None
    allowed: re.Pattern[str] | None = None  # --release-to: recipients must match

    def check(self, recipients: object) -> list[str]:
        """The recipients as addresses, or ReleaseRefused with the reason."""
        if not isinstance(recipients, list) or not recipients:
            raise ReleaseRefused('Give one or more recipients: {"recipients": ["a@example.com"]}')
        addresses = []
        for recipient in recipients:
            if not isinstance(recipient, str):
                raise ReleaseRefused("Each recipient must be a string.")
            try:
                address = validate_email(recipient, **SYNTAX_ONLY).normalized
            except EmailNotValidError as exc:
                raise ReleaseRefused(f"{recipient!r} is not an email address: {exc}") from exc
            if self.allowed and not self.allowed.search(address):
                raise ReleaseRefused(f"{address} is not allowed by --release-to")
            addresses.append(address)
        return addresses

    def send(self, sender: str, recipients: list[str], source: bytes) -> None:
        """Blocking: run it in a thread. Raises smtplib's errors as they come."""
        with smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_SECONDS) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.auth:
                smtp.login(*self.auth)
            smtp.sendmail(sender, recipients, source)
