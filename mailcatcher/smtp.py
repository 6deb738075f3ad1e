"""The SMTP side: aiosmtpd speaks the protocol, this handler only keeps what arrives.

Like MailCatcher it accepts any sender, any recipient and any AUTH credentials, and
delivers nothing. aiosmtpd enforces the size limit (552 at MAIL FROM when the client
declares SIZE, 552 after DATA otherwise).

Where aiosmtpd is stricter than MailCatcher and Mailpit, CatchingSMTP relaxes it, so
no mail an app sends is refused (and lost): lines of any length up to the size limit
(aiosmtpd refuses those over 1,000 bytes), bare-LF line endings (Python's own
``smtplib.sendmail(..., msg.as_bytes())`` sends them), and a second MAIL FROM
without RSET, which starts a new message as in MailCatcher.

Sessions cost a file handle each, so they are capped (in all and per client
address; on one machine every client is 127.0.0.1) and none is kept for long
without sending mail (issue 28: 50 sessions kept up with NOOP every 15 s made the
sink answer 421 to everyone else):

- Idle means no progress in a mail transaction: only an accepted MAIL or RCPT, the
  DATA command and the bytes of its content move the idle clock. NOOP, RSET, HELO,
  EHLO, VRFY, HELP and AUTH do not, so chatter cannot keep a session open, while a
  big message arriving slowly is not cut off. (aiosmtpd's own ``timeout`` is reset
  by any command and never during DATA: the opposite on both counts, so it is left
  as a backstop at the session's lifetime.)
- A session also has a lifetime (--smtp-session-max-seconds), whatever it does:
  without it a client could hold a session by starting transactions for ever.
- A connection over a cap first makes room: the longest-idle session that is not
  inside a transaction (of that client, for the per-client cap; of anyone, for the
  total) gets ``421`` (RFC 5321 4.1.4 allows it at any time) and is closed. Only
  when every session is mid-transaction is the new one refused. So a holder's
  sessions give way to a sender's, and a sender's message in flight is never the
  one closed.

(aiosmtpd's ``command_call_limit``, its own defence against sessions kept up with
commands, counts each command's calls per session: limiting MAIL would cut a
worker's kept connection (Work-It's send up to 100 messages each), and limiting
only NOOP and RSET would still let a holder send them up to the limit, one per
timeout, for many minutes.)

One design for all three: each session carries its start and its last progress,
and one timer of its own that fires at the earlier of its two deadlines and
re-arms itself if progress moved one (progress itself only stores a time). The
registry (Sessions) scans at most the capped number of sessions, and only when a
cap is reached. Of aiosmtpd's SMTP class this overrides the connection callbacks
of asyncio's protocol API (connection_made, connection_lost, data_received) and
the smtp_MAIL, smtp_RCPT and smtp_DATA command methods (aiosmtpd documents
overriding ``smtp_<COMMAND>``; ``@syntax`` keeps their HELP), each calling
aiosmtpd's own, and the new code reads only its documented attributes (envelope, transport,
loop, hostname).
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session, syntax

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
# Far more than any app needs to send a message (or a hundred, over a kept
# connection), short enough that a holder's sessions all turn over in minutes.
DEFAULT_SESSION_MAX_SECONDS = 300.0
# A session closed with 421 whose client reads nothing cannot take the line (the
# close waits for it): after this long it is cut, so its handle comes back anyway.
CLOSE_GRACE_SECONDS = 5.0
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


def _help_of(command: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """aiosmtpd's HELP text for the command a method overrides: HELP lists and
    explains only the commands whose method carries it."""
    return syntax(
        command.__smtp_syntax__,
        command.__smtp_syntax_extended__,
        command.__smtp_syntax_when__,
    )


@dataclass
class ConnectionLimits:
    """The SMTP side's caps and timeouts (the flags)."""

    total: int = DEFAULT_MAX_CONNECTIONS
    per_client: int = DEFAULT_MAX_CONNECTIONS_PER_CLIENT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT  # without progress in a mail transaction
    session_max: float = DEFAULT_SESSION_MAX_SECONDS  # whatever the session does


class CatchingSMTP(SMTP):
    def __init__(
        self,
        *args: Any,
        data_size_limit: int = DEFAULT_MAX_MESSAGE_SIZE,
        limits: ConnectionLimits | None = None,
        client: str = "",
        on_close: Callable[[CatchingSMTP], None] = lambda session: None,
        **kwargs: Any,
    ):
        # Read by SMTP.__init__ for its stream reader's buffer: a line (or a whole
        # bare-LF message) may be as long as the message itself. Twice that, so a line
        # past the size limit still gets the size's 552, not 500 Line too long.
        self.line_length_limit = 2 * data_size_limit + 2
        self.limits = limits or ConnectionLimits()
        self.client = client
        self._on_close = on_close
        self.started = self.last_progress = 0.0
        self._in_data = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._lost = False
        # aiosmtpd's timeout (reset by any command) is only a backstop: the watchdog
        # below closes a session first, idle or too old.
        kwargs.setdefault("timeout", self.limits.session_max + CLOSE_GRACE_SECONDS)
        super().__init__(*args, data_size_limit=data_size_limit, **kwargs)

    @property
    def in_transaction(self) -> bool:
        """Between an accepted MAIL and the end of its DATA (or RSET, HELO, EHLO)."""
        return self._in_data or (self.envelope is not None and self.envelope.mail_from is not None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._watchdog is None:  # (aiosmtpd calls this again after STARTTLS)
            self.started = self.last_progress = self.loop.time()
            self._watch()

    def connection_lost(self, error: Exception | None) -> None:
        self._lost = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        try:
            super().connection_lost(error)
        finally:
            self._on_close(self)

    def data_received(self, data: bytes) -> None:
        if self._in_data:
            self.last_progress = self.loop.time()  # the message's content arriving
        super().data_received(data)

    def _watch(self) -> None:
        """Close the session once it is past its lifetime or idle too long; else
        look again at the earlier of the two deadlines."""
        now = self.loop.time()
        end_of_life = self.started + self.limits.session_max
        idle_until = self.last_progress + self.limits.idle_timeout
        if now >= end_of_life:
            self.close_with_421("Session too long")
        elif now >= idle_until:
            self.close_with_421("Idle too long")
        else:
            self._watchdog = self.loop.call_at(min(end_of_life, idle_until), self._watch)

    def close_with_421(self, reason: str) -> None:
        """Say why and close; the session stops counting against the caps now."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self._on_close(self)
        transport.write(f"421 {self.hostname} {reason}, closing connection\r\n".encode())
        transport.close()
        self.loop.call_later(CLOSE_GRACE_SECONDS, self._cut, transport)

    def _cut(self, transport: asyncio.BaseTransport) -> None:
        if not self._lost:  # the client never took its 421 off the line
            transport.abort()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        plain = _PLAIN_ANGLE_ADDRESS.match(arg or "")
        if plain is None or len(plain[1].rpartition("@")[0]) > (self.local_part_limit or 1e9):
            return super()._getaddr(arg)  # comments, quotes, literals, UTF-8, limits
        return plain[1], arg[plain.end() :]

    @_help_of(SMTP.smtp_MAIL)
    async def smtp_MAIL(self, arg: str | None) -> None:
        if self.envelope is not None and self.envelope.mail_from:
            self._set_rset_state()  # MailCatcher's choice: no 503 nested MAIL
        await super().smtp_MAIL(arg)
        if self.envelope is not None and self.envelope.mail_from is not None:
            self.last_progress = self.loop.time()  # accepted

    @_help_of(SMTP.smtp_RCPT)
    async def smtp_RCPT(self, arg: str | None) -> None:
        recipients = len(self.envelope.rcpt_tos) if self.envelope is not None else 0
        await super().smtp_RCPT(arg)
        if self.envelope is not None and len(self.envelope.rcpt_tos) > recipients:
            self.last_progress = self.loop.time()  # accepted

    @_help_of(SMTP.smtp_DATA)
    async def smtp_DATA(self, arg: str) -> None:
        envelope = self.envelope
        # What aiosmtpd answers 354 to, and then reads the content of.
        self._in_data = envelope is not None and bool(envelope.rcpt_tos) and not arg
        if self._in_data:
            self.last_progress = self.loop.time()
        try:
            await super().smtp_DATA(arg)
        finally:
            self._in_data = False
        if self.envelope is not envelope:  # the message is in (or refused for its size)
            self.last_progress = self.loop.time()


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


class Sessions:
    """The open sessions, against the caps. Over a cap, a new connection first
    closes the longest-idle session that is not inside a mail transaction (one of
    the same client's, for the per-client cap); refused only if there is none."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.open: set[CatchingSMTP] = set()
        self.per_client: Counter[str] = Counter()

    def make_room(self, client: str) -> tuple[bool, CatchingSMTP | None]:
        """Whether a connection from ``client`` may have a session, and the session
        closed to make room for it, if one was."""
        if self.per_client[client] >= self.limits.per_client:
            candidates = [session for session in self.open if session.client == client]
        elif len(self.open) >= self.limits.total:
            candidates = list(self.open)
        else:
            return True, None
        idle = [session for session in candidates if not session.in_transaction]
        if not idle:
            return False, None
        victim = min(idle, key=lambda session: session.last_progress)
        victim.close_with_421("Idle, closed to make room for another connection")
        self.release(victim)  # (close_with_421 did, unless it was closing already)
        return True, victim

    def add(self, session: CatchingSMTP) -> None:
        self.open.add(session)
        self.per_client[session.client] += 1

    def release(self, session: CatchingSMTP) -> None:
        """Idempotent: a session is released when it is closed and again when lost."""
        if session in self.open:
            self.open.remove(session)
            self.per_client[session.client] -= 1
            if self.per_client[session.client] <= 0:
                del self.per_client[session.client]


class Gate(asyncio.Protocol):
    """The protocol each connection starts with: under the caps (after making room
    if it can) it hands the connection to a new SMTP session; otherwise it answers
    421 and closes, before aiosmtpd allocates anything. Refusals, and sessions
    closed to make room, are logged once per burst, not each."""

    def __init__(
        self,
        sessions: Sessions,
        session: Callable[[str], CatchingSMTP],
        refused: BurstLog,
        evicted: BurstLog,
    ) -> None:
        self._sessions, self._session = sessions, session
        self._refused, self._evicted = refused, evicted

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if peer else ""
        sessions, limits = self._sessions, self._sessions.limits
        admitted, victim = sessions.make_room(client)
        if not admitted:
            transport.write(TOO_MANY)
            transport.close()
            self._refused(
                logging.WARNING,
                "refusing SMTP connections with 421: %d open, %d from %s (caps %d and %d), "
                "every one inside a mail transaction",
                len(sessions.open),
                sessions.per_client[client],
                client,
                limits.total,
                limits.per_client,
            )
            return
        if victim is not None:
            self._evicted(
                logging.WARNING,
                "closed the longest-idle SMTP session (from %s) to admit one from %s "
                "(caps %d in all and %d per client)",
                victim.client,
                client,
                limits.total,
                limits.per_client,
            )
        protocol = self._session(client)
        sessions.add(protocol)
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
) -> tuple[asyncio.AbstractServer, Sessions]:
    """Listen on host:port; returns the server and the live sessions (to close on exit)."""
    loop = asyncio.get_running_loop()
    handler = CatchAllHandler(mailbox)
    sessions = Sessions(limits or ConnectionLimits())
    hostname = socket.gethostname()  # aiosmtpd would otherwise resolve an FQDN per connection
    refused, evicted = BurstLog(log), BurstLog(log)

    def session(client: str) -> CatchingSMTP:
        return CatchingSMTP(
            handler,
            limits=sessions.limits,
            client=client,
            on_close=sessions.release,
            data_size_limit=max_message_size,
            enable_SMTPUTF8=True,
            hostname=hostname,
            ident=f"mailcatcher {__version__}",
            authenticator=accept_any_login,
            auth_require_tls=False,
            loop=loop,
        )

    server = await loop.create_server(lambda: Gate(sessions, session, refused, evicted), host, port)
    return server, sessions


def close_sessions(sessions: Sessions) -> None:
    for protocol in list(sessions.open):
        if protocol.transport is not None:
            protocol.transport.close()
