"""An SMTP server that takes every message and notes what came."""

import email
import email.policy
import threading
import time
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from harness.ports import free_port


class SmtpSink:
    """aiosmtpd on a free port, fixed when it is made: stop() and start() again is an
    outage and a recovery at the address the app was given.

    It notes each message's arrival (perf_counter) and recipients, and, when
    ``keep`` (the tests), the message itself, parsed. A benchmark's sink keeps
    nothing, so that its own cost stays small and flat however much mail comes.
    It answers only DATA: aiosmtpd does the rest, as plainly as it can.
    ``smtp_options`` go to aiosmtpd's SMTP (say, the mail catcher's settings).
    """

    def __init__(self, keep: bool = True, port: int | None = None, **smtp_options) -> None:
        self.port = port or free_port()
        self.keep = keep
        self.smtp_options = smtp_options
        self.messages: list[EmailMessage] = []
        self.arrived: list[float] = []  # perf_counter() of each message
        self.recipients: list[list[str]] = []  # of each message
        self._arrival = threading.Condition()
        self._controller: Controller | None = None

    @property
    def count(self) -> int:
        return len(self.arrived)

    async def handle_DATA(self, server, session, envelope) -> str:
        self.record(envelope)
        return "250 OK"

    def record(self, envelope) -> None:
        message = None
        if self.keep:
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._arrival:
            if message is not None:
                self.messages.append(message)
            self.recipients.append(list(envelope.rcpt_tos))
            self.arrived.append(time.perf_counter())
            self._arrival.notify_all()

    def start(self) -> None:
        self._controller = Controller(
            self, hostname="127.0.0.1", port=self.port, **self.smtp_options
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> "SmtpSink":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def sent_to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def wait_for(self, count: int, timeout: float = 30) -> list[EmailMessage]:
        """Block until ``count`` messages arrived (or the timeout passed); return those kept."""
        with self._arrival:
            self._arrival.wait_for(lambda: self.count >= count, timeout)
            return list(self.messages)

    def arrivals(self) -> dict[str, list[float]]:
        """When each recipient's messages arrived (perf_counter), in order."""
        found: dict[str, list[float]] = {}
        with self._arrival:
            for at, recipients in zip(self.arrived, self.recipients, strict=True):
                for address in recipients:
                    found.setdefault(address, []).append(at)
        return found
