"""A TCP proxy that a test can cut and heal: a network partition between two processes."""

import asyncio
import socket
import struct
import threading
from concurrent.futures import Future

from harness.ports import free_port

RESET = "reset"
BLACKHOLE = "blackhole"
CHUNK = 64 * 1024
CONNECT_TIMEOUT = 10.0  # to the target; a client that waits longer gets a reset


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST rather than a FIN (SO_LINGER 0): the peer's next read or write
    fails with "connection reset", as after a broken link, not with a clean end."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass  # already gone
    writer.transport.abort()


class _Link:
    """One client's connection through the proxy and, once made, its own to the target."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.target: asyncio.StreamWriter | None = None
        self.is_cut = False

    def writers(self) -> list[asyncio.StreamWriter]:
        return [w for w in (self.client, self.target) if w is not None]

    def reset(self) -> None:
        self.is_cut = True
        for writer in self.writers():
            _reset(writer)

    def close(self) -> None:
        for writer in self.writers():
            writer.close()


class TcpProxy:
    """Forwards connections from a free port of its own to ``target_host:target_port``,
    until a test cuts it: point a client, a replica (``--replicaof``) or a Sentinel at
    the proxy instead of the server, and the test can part them from it and join them
    again without touching either process.

    It runs its own event loop in a daemon thread, so that synchronous tests can use it;
    cut() and heal() have taken effect when they return. Each direction is forwarded
    as it comes, half-closes included (one side's EOF is passed on; the link closes
    once both sides have ended); an error on either side resets both.

    Two kinds of cut:

    - ``cut()`` (``"reset"``) resets every open connection, both sides (a TCP RST, so
      Redis and the client each see "connection reset by peer" at once), and resets
      each new one as soon as it is accepted. A real partition is quieter: connects
      time out and nobody learns of the break until their own timeouts. This is the
      quick, simpler imitation: redis-py raises ConnectionError at the next command
      (its TCP connect succeeds, the first read or write fails); a replica logs a
      lost link to its primary and retries every second, each try reset again.
    - ``cut("blackhole")`` keeps every connection open and forwards no byte either way
      (what was already read waits in the proxy and the kernel's buffers, as TCP's
      retransmissions would); new connections are accepted and held, with no
      connection made to the target. This is a partition as the processes see it:
      a command hangs until the client's socket_timeout (redis-py: TimeoutError), a
      replica waits for repl-timeout, a Sentinel's PINGs go unanswered. Connects do
      succeed, which a real partition's would not.

    heal() lets new connections through again. Those a reset cut closed stay closed
    (clients reconnect); those a blackhole held resume, with whatever was sent during
    the cut delivered then, as after a real partition: so a command whose client gave
    up on it may still run, late.
    """

    def __init__(self, target_host: str, target_port: int, listen_host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = listen_host
        self.port = free_port()
        self.address = f"{self.host}:{self.port}"
        self._mode: str | None = None  # None (forwarding), RESET or BLACKHOLE
        self._links: set[_Link] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._flowing: asyncio.Event | None = None  # set unless cut

    @property
    def connections(self) -> int:
        """Connections open through the proxy now (those a blackhole holds included)."""
        return len(self._links)

    @property
    def is_cut(self) -> bool:
        return self._mode is not None

    # -- the test's side (any thread) ----------------------------------------------

    def start(self, timeout: float = 10) -> None:
        """Start its thread; return once it listens."""
        if self._thread is not None:
            raise RuntimeError("TcpProxy already started")
        listening: Future[None] = Future()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._main(listening),), name=f"tcp-proxy-{self.port}"
        )
        self._thread.daemon = True
        self._thread.start()
        try:
            listening.result(timeout)
        except BaseException:
            self._thread.join(timeout)
            self._thread = None
            raise

    def stop(self, timeout: float = 10) -> None:
        """Reset every connection, stop listening and join the thread; safe to call when
        not running."""
        if self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"the TcpProxy thread on port {self.port} did not stop")
        self._thread = None

    def cut(self, mode: str = RESET) -> None:
        """Part the two sides: ``"reset"`` or ``"blackhole"`` (see the class)."""
        if mode not in (RESET, BLACKHOLE):
            raise ValueError(f"mode must be {RESET!r} or {BLACKHOLE!r}, not {mode!r}")
        self._in_loop(self._cut(mode))

    def heal(self) -> None:
        """Forward again: new connections, and those a blackhole held."""
        self._in_loop(self._heal())

    def _in_loop(self, coroutine) -> None:
        if self._thread is None:
            coroutine.close()
            raise RuntimeError("TcpProxy not started")
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def __enter__(self) -> "TcpProxy":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- the proxy's side (its own thread and loop) ------------------------------

    async def _main(self, listening: Future) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._mode = None
        try:
            server = await asyncio.start_server(self._serve, self.host, self.port)
        except BaseException as exc:
            listening.set_exception(exc)
            return
        listening.set_result(None)
        async with server:
            await self._stopping.wait()
            server.close()
            self._reset_all()
        # asyncio.run then cancels the handlers left (a blackhole's, one still connecting).

    async def _cut(self, mode: str) -> None:
        self._mode = mode
        self._flowing.clear()
        if mode == RESET:
            self._reset_all()
        await asyncio.sleep(0)  # the aborted sockets close in the loop's next turn

    async def _heal(self) -> None:
        self._mode = None
        self._flowing.set()

    def _reset_all(self) -> None:
        for link in self._links:
            link.reset()
        self._links.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Each accepted connection, until it ends or stop() cancels it."""
        try:
            await self._forward(reader, writer)
        except asyncio.CancelledError:
            # Ends normally: Python 3.11's start_server logs a cancelled handler's
            # CancelledError as an error (task.exception() on it raises).
            _reset(writer)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Held while a blackhole lasts, then joined to a connection of its own to the
        target, and forwarded both ways until both sides end."""
        if self._mode == RESET:
            _reset(writer)
            return
        link = _Link(writer)
        self._links.add(link)
        try:
            await self._flowing.wait()
            if link.is_cut:
                return
            connecting = asyncio.open_connection(self.target_host, self.target_port)
            target_reader, link.target = await asyncio.wait_for(connecting, CONNECT_TIMEOUT)
            if link.is_cut:  # cut while it connected
                link.reset()
                return
            async with asyncio.TaskGroup() as pumps:
                pumps.create_task(self._pump(reader, link.target))
                pumps.create_task(self._pump(target_reader, writer))
        except* OSError:  # reset, refused, timed out: pass it on as a reset
            link.reset()
        finally:
            self._links.discard(link)
            link.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One direction: bytes as they come, then the EOF; nothing while cut."""
        while True:
            await self._flowing.wait()
            data = await reader.read(CHUNK)
            await self._flowing.wait()  # cut while it read: hold it
            if writer.is_closing():
                return
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()
