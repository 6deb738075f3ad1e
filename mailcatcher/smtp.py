"""The SMTP side: aiosmtpd speaks the protocol, this handler only keeps what arrives.

Like MailCatcher it accepts any sender, any recipient and any AUTH credentials, and
delivers nothing. aiosmtpd enforces the size limit (552 at MAIL FROM when the client
declares SIZE, 552 after DATA otherwise).

Where aiosmtpd is stricter than MailCatcher and Mailpit, CatchingSMTP relaxes it, so
no mail an app sends is refused (and lost): lines of any length up to the size limit
(aiosmtpd refuses those over 1,000 bytes), bare-LF line endings (Python's own
``smtplib.sendmail(..., msg.as_bytes())`` sends them), and a second MAIL FROM
without RSET, which starts a new message as in MailCatcher.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from mailcatcher import __version__
from mailcatcher.logs import BurstLog
from mailcatcher.mailbox import Mailbox
from mailcatcher.mime import parse

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_SIZE = 20 * 1024 * 1024
# Each connection holds a file handle: ~20,000 idle ones (aiosmtpd keeps them 300 s)
# used up the process's, and SMTP and the inbox both stopped. An app's pool holds a
# few connections; 200 in all, 50 from one address, idle 30 s leave room for many
# apps and tests sharing one sink, and handles to spare for the inbox.
DEFAULT_MAX_CONNECTIONS = 200
DEFAULT_MAX_CONNECTIONS_PER_CLIENT = 50
DEFAULT_IDLE_TIMEOUT = 30.0
TOO_MANY = b"421 Too many connections, try again later\r\n"
# Parsing a big message takes long enough to stall the web side, so it moves to a
# worker thread; parsing touches no shared state, so this needs no lock. Parsing is
# linear in the message's size (tests/mailcatcher/test_slow_input.py), so below this
# a message holds the loop for a few milliseconds at most.
PARSE_IN_THREAD_ABOVE = 256 * 1024
# A line after a bare LF, dot-stuffed by the client: aiosmtpd only unstuffs lines
# that follow CRLF, since to it the whole bare-LF message is one line.
_STUFFED_AFTER_BARE_LF = re.compile(rb"(?<=[^\r]\n)\.")


# <local@domain> in plain dot-atoms, what nearly every client sends: read it without
# the email package's full RFC 5322 parser, which costs a quarter of a message here.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_PLAIN_ANGLE_ADDRESS = re.compile(rf"\s*<({_DOT_ATOM}@{_DOT_ATOM})>(?!\s*\()\s*")


class CatchingSMTP(SMTP):
    def __init__(
        self,
        *args: Any,
        data_size_limit: int = DEFAULT_MAX_MESSAGE_SIZE,
        on_close: Callable[[], None] = lambda: None,
        **kwargs: Any,
    ):
        # Read by SMTP.__init__ for its stream reader's buffer: a line (or a whole
        # bare-LF message) may be as long as the message itself. Twice that, so a line
        # past the size limit still gets the size's 552, not 500 Line too long.
        self.line_length_limit = 2 * data_size_limit + 2
        self._on_close = on_close
        super().__init__(*args, data_size_limit=data_size_limit, **kwargs)

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
        finally:
            self._on_close()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        plain = _PLAIN_ANGLE_ADDRESS.match(arg or "")
        if plain is None or len(plain[1].rpartition("@")[0]) > (self.local_part_limit or 1e9):
            return super()._getaddr(arg)  # comments, quotes, literals, UTF-8, limits
        return plain[1], arg[plain.end() :]

    async def smtp_MAIL(self, arg: str | None) -> None:
        if self.envelope is not None and self.envelope.mail_from:
            self._set_rset_state()  # MailCatcher's choice: no 503 nested MAIL
        await super().smtp_MAIL(arg)


def unstuff_bare_lf_lines(source: bytes) -> bytes:
    return _STUFFED_AFTER_BARE_LF.sub(b"", source) if b"\n." in source else source


class CatchAllHandler:
    """Keeps what arrives. A message is parsed and stored just after its 250 goes out,
    on the loop's next turn, with any others that arrived meanwhile in one
    transaction: the client sends its next message while this one is stored, which
    nearly doubles what one connection delivers. Nothing can read the mailbox in
    between (the loop runs the store before it serves another request), and the
    in-memory store cannot fail; a file store that fails (a full disk) logs it.
    Big messages are parsed in a thread first, so the web side does not stall."""

    def __init__(self, mailbox: Mailbox) -> None:
        self._mailbox = mailbox
        self._arrived: list[tuple[str | None, list[str], bytes, None]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        source = unstuff_bare_lf_lines(envelope.original_content or b"")
        sender, recipients = envelope.mail_from, list(envelope.rcpt_tos)
        if len(source) > PARSE_IN_THREAD_ABOVE:
            try:
                parsed = await asyncio.get_running_loop().run_in_executor(None, parse, source)
                self._mailbox.receive(sender, recipients, source, parsed)
            except Exception:
                log.exception("could not keep a message from %s", sender)
                return "451 Requested action aborted: local error in processing"
            return "250 Message accepted for delivery"
        self._arrived.append((sender, recipients, source, None))
        if len(self._arrived) == 1:
            asyncio.get_running_loop().call_soon(self._keep_arrived)
        return "250 Message accepted for delivery"

    def _keep_arrived(self) -> None:
        arrived, self._arrived = self._arrived, []
        try:
            self._mailbox.receive_all(arrived)
        except Exception:
            log.exception("could not keep %d messages after accepting them", len(arrived))


@dataclass
class ConnectionLimits:
    """Open SMTP connections, in all and per client address, against their caps."""

    total: int = DEFAULT_MAX_CONNECTIONS
    per_client: int = DEFAULT_MAX_CONNECTIONS_PER_CLIENT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    open: Counter[str] = field(default_factory=Counter)

    def admit(self, client: str) -> bool:
        if self.open.total() >= self.total or self.open[client] >= self.per_client:
            return False
        self.open[client] += 1
        return True

    def release(self, client: str) -> None:
        self.open[client] -= 1
        if self.open[client] <= 0:
            del self.open[client]


class Gate(asyncio.Protocol):
    """The protocol each connection starts with: under the caps it hands the
    connection to a new SMTP session; over them it answers 421 and closes, before
    aiosmtpd allocates anything. Refusals are logged once per burst, not each."""

    def __init__(
        self,
        limits: ConnectionLimits,
        session: Callable[[Callable[[], None]], SMTP],
        refused: BurstLog,
    ) -> None:
        self._limits, self._session, self._refused = limits, session, refused

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if peer else ""
        if not self._limits.admit(client):
            transport.write(TOO_MANY)
            transport.close()
            self._refused(
                logging.WARNING,
                "refusing SMTP connections with 421: %d open, %d from %s (caps %d and %d)",
                self._limits.open.total(),
                self._limits.open[client],
                client,
                self._limits.total,
                self._limits.per_client,
            )
            return
        protocol = self._session(lambda: self._limits.release(client))
        transport.set_protocol(protocol)
        protocol.connection_made(transport)


def accept_any_login(*args: Any) -> AuthResult:
    """MailCatcher accepts every AUTH, so apps configured with credentials still send."""
    return AuthResult(success=True)


async def start_smtp(
    mailbox: Mailbox,
    host: str,
    port: int,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    limits: ConnectionLimits | None = None,
) -> tuple[asyncio.AbstractServer, weakref.WeakSet[SMTP]]:
    """Listen on host:port; returns the server and the live sessions (to close on exit)."""
    loop = asyncio.get_running_loop()
    handler = CatchAllHandler(mailbox)
    limits = limits or ConnectionLimits()
    sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
    hostname = socket.gethostname()  # aiosmtpd would otherwise resolve an FQDN per connection
    refused = BurstLog(log)

    def session(on_close: Callable[[], None]) -> SMTP:
        protocol = CatchingSMTP(
            handler,
            on_close=on_close,
            timeout=limits.idle_timeout,
            data_size_limit=max_message_size,
            enable_SMTPUTF8=True,
            hostname=hostname,
            ident=f"mailcatcher {__version__}",
            authenticator=accept_any_login,
            auth_require_tls=False,
            loop=loop,
        )
        sessions.add(protocol)
        return protocol

    server = await loop.create_server(lambda: Gate(limits, session, refused), host, port)
    return server, sessions


def close_sessions(sessions: weakref.WeakSet[SMTP]) -> None:
    for protocol in list(sessions):
        if protocol.transport is not None:
            protocol.transport.close()
