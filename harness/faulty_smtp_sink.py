"""An SMTP sink that misbehaves on request: the mail server faults the tests need."""

import asyncio
from collections.abc import Callable

from harness.smtp_sink import SmtpSink


class FaultySmtpSink(SmtpSink):
    """An SmtpSink with knobs for faults: give chosen recipients or senders a reply
    (4xx or 5xx), refuse a message after its DATA, hang up at RCPT or on QUIT, answer
    late or never, run a callback at a chosen moment, or close every open connection.
    stop() and start() make an outage.

    Subclasses that decide faults per session (by chance, say) override
    drops_at_rcpt, answer_delay_for and hangs_up_on_quit rather than the handlers.
    """

    def __init__(self, keep: bool = True, port: int | None = None, **smtp_options) -> None:
        super().__init__(keep, port, **smtp_options)
        # address -> replies to give it, one per attempt, e.g. ["451 Try later"]; then accept
        self.rcpt_replies: dict[str, list[str]] = {}
        self.drop_next = 0  # hang up on this many sessions at RCPT, before the message
        self.hang_up_on_quit = False  # accept the message, then drop the QUIT
        self.answer_delay = 0.0  # keep the message, then answer its DATA this late
        self.on_accept: Callable[[], object] | None = None  # at each message kept, before its 250
        self.step_delay = 0.0  # answer MAIL FROM and each RCPT TO this late
        self.on_rcpt: Callable[[], object] | None = None  # at each RCPT TO, before its answer
        self.mail_from_replies: list[str] = []  # replies to give MAIL FROM, one per session
        # replies to give the end of DATA instead of 250, one per message; a message so
        # refused is not kept, as a real server would not deliver it
        self.data_replies: list[str] = []
        self.connections: list = []  # the transport of each connection that sent MAIL FROM

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:
        if server.transport not in self.connections:
            self.connections.append(server.transport)
        await asyncio.sleep(self.step_delay)
        if self.mail_from_replies:
            return self.mail_from_replies.pop(0)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        await asyncio.sleep(self.step_delay)
        if self.on_rcpt is not None:
            self.on_rcpt()
        if self.drops_at_rcpt(address):
            server.transport.abort()
            return "421 Dropped"
        if self.rcpt_replies.get(address):
            return self.rcpt_replies[address].pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.data_replies:
            return self.data_replies.pop(0)
        self.record(envelope)
        if self.on_accept is not None:
            self.on_accept()
        await asyncio.sleep(self.answer_delay_for(session))
        return "250 Message accepted for delivery"

    async def handle_QUIT(self, server, session, envelope) -> str:
        if self.hangs_up_on_quit(session):
            server.transport.abort()
        return "221 Bye"

    def drops_at_rcpt(self, address: str) -> bool:
        if self.drop_next > 0:
            self.drop_next -= 1
            return True
        return False

    def answer_delay_for(self, session) -> float:
        return self.answer_delay

    def hangs_up_on_quit(self, session) -> bool:
        return self.hang_up_on_quit

    def hang_up_all(self) -> None:
        """Close every open connection, as a server does to idle clients."""
        for transport in self.connections:
            self._controller.loop.call_soon_threadsafe(transport.abort)
