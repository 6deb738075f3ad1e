"""The HTTP side's connections: closed when idle or slow, and capped on accept.

aiohttp closes a connection that has not sent a whole request head within its
``keepalive_timeout`` of connecting or of its previous response, but by default
that is an hour (3,630 s in aiohttp 3.14), and it caps nothing: 1,500 connections
that sent nothing, or a request line and a header every 10 s, held their file
handles, which the process shares with SMTP (issue 28). So:

- ``--http-idle-timeout`` (30 s) is aiohttp's ``keepalive_timeout``: the whole head
  of each request must arrive within it, of connecting or of the previous response.
  A connection that sends nothing, or dribbles its headers, is closed then.
- A response the client does not read is cut once the sink's writes have stalled
  that long (the transport's pause_writing, not resumed), and a request body must
  arrive within it too (web.py's release route, the only one that reads a body).
- ``--http-max-connections`` (200) caps them on accept: over the cap, the
  connection longest without a request in progress (idle between requests, or
  still sending its head) is closed to make room; only when every one is inside a
  request does the new one get 503. Websockets, the only requests that last, may
  hold half of the cap (web.py), so the rest is always there for the inbox.

How, simply: each connection's protocol is an HttpConnection in front of aiohttp's
own (``runner.server()``, aiohttp's documented protocol factory), which counts it,
watches for stalled writes and passes every event on; a middleware marks the
requests in progress. TCPSite cannot put anything in front of aiohttp's protocol,
so ``start_http`` listens with loop.create_server as TCPSite does. The cap is
checked with a scan of the open connections, and only when it is reached.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from mailcatcher.logs import BurstLog

log = logging.getLogger(__name__)

DEFAULT_HTTP_MAX_CONNECTIONS = 200
DEFAULT_HTTP_IDLE_TIMEOUT = 30.0
# A connection closed to make room whose client reads nothing cannot take the close
# (it waits for the buffer to go): after this long it is cut.
CLOSE_GRACE_SECONDS = 5.0
_BUSY_TEXT = b"Too many connections, try again later.\r\n"
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s"
    % (len(_BUSY_TEXT), _BUSY_TEXT)
)


@dataclass(frozen=True)
class HttpLimits:
    """The HTTP side's cap and timeout (the flags)."""

    max_connections: int = DEFAULT_HTTP_MAX_CONNECTIONS
    idle_timeout: float = DEFAULT_HTTP_IDLE_TIMEOUT

    @property
    def max_websockets(self) -> int:
        return max(1, self.max_connections // 2)


class HttpConnection(asyncio.Protocol):
    """One HTTP connection: counted against the cap, then handed on to aiohttp."""

    def __init__(self, pool: HttpConnections) -> None:
        self._pool = pool
        self._loop = asyncio.get_running_loop()
        self._inner: asyncio.Protocol | None = None
        self.transport: asyncio.Transport | None = None
        self.requests = 0  # in progress (track_requests)
        self.idle_since = self._loop.time()
        self._stalled: asyncio.TimerHandle | None = None
        self._lost = False

    @property
    def idle(self) -> bool:
        return self.requests == 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        if not self._pool.admit(self):
            self.transport.write(BUSY)
            self.transport.close()
            return
        self._inner = self._pool.protocol()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._stalled is None:
            self._stalled = self._loop.call_later(self._pool.limits.idle_timeout, self._cut)
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._stalled is not None:
            self._stalled.cancel()
        self._pool.release(self)
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def close(self) -> None:
        """Close now, and cut it if the client will not take the close."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
            self._loop.call_later(CLOSE_GRACE_SECONDS, self._cut)

    def _cut(self) -> None:
        if not self._lost and self.transport is not None:
            self.transport.abort()


class HttpConnections:
    """The open connections, against the cap."""

    def __init__(self, protocol: Callable[[], asyncio.Protocol], limits: HttpLimits) -> None:
        self.protocol, self.limits = protocol, limits
        self.open: set[HttpConnection] = set()
        self._refused, self._evicted = BurstLog(log), BurstLog(log)

    def admit(self, connection: HttpConnection) -> bool:
        """Whether ``connection`` fits, after closing the longest-idle one if need be."""
        if len(self.open) >= self.limits.max_connections:
            idle = [other for other in self.open if other.idle]
            if not idle:
                self._refused(
                    logging.WARNING,
                    "refusing HTTP connections with 503: all %d are inside a request",
                    len(self.open),
                )
                return False
            victim = min(idle, key=lambda other: other.idle_since)
            self.release(victim)
            victim.close()
            self._evicted(
                logging.WARNING,
                "closed the longest-idle HTTP connection to admit another (cap %d)",
                self.limits.max_connections,
            )
        self.open.add(connection)
        return True

    def release(self, connection: HttpConnection) -> None:
        self.open.discard(connection)


@web.middleware
async def track_requests(request: web.Request, handler):
    """Marks the connection busy while its request is handled: the outermost
    middleware. (A connection that is not an HttpConnection, as under aiohttp's
    test server, is left alone.)"""
    transport = request.transport
    connection = transport.get_protocol() if transport is not None else None
    if not isinstance(connection, HttpConnection):
        return await handler(request)
    connection.requests += 1
    try:
        return await handler(request)
    finally:
        connection.requests -= 1
        connection.idle_since = asyncio.get_running_loop().time()


async def start_http(
    runner: web.AppRunner, host: str, port: int, limits: HttpLimits
) -> asyncio.AbstractServer:
    """Listen on host:port for ``runner`` (set up, with keepalive_timeout from
    ``limits``), each connection counted against the cap."""
    assert runner.server is not None, "call runner.setup() first"
    pool = HttpConnections(runner.server, limits)
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: HttpConnection(pool), host, port)
