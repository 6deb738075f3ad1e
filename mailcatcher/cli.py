"""`mailcatcher [options]`: MailCatcher's flags, both servers on one asyncio loop.

aiosmtpd already runs on asyncio, so the web side (aiohttp) shares its loop: one
process, one thread touching the store, no locks. SIGINT and SIGTERM (honcho sends
both on Ctrl-C) stop both servers and exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import re
import signal
from collections.abc import Sequence

from aiohttp import web

from mailcatcher import __version__, logs
from mailcatcher.events import Bus
from mailcatcher.http_limits import (
    DEFAULT_HTTP_IDLE_TIMEOUT,
    DEFAULT_HTTP_MAX_CONNECTIONS,
    HttpLimits,
    start_http,
)
from mailcatcher.mailbox import Mailbox
from mailcatcher.release import Relay
from mailcatcher.smtp import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_SESSION_MAX_SECONDS,
    ConnectionLimits,
    close_sessions,
    start_smtp,
)
from mailcatcher.store import Store
from mailcatcher.web import PREFIX, WebOptions, create_app

log = logging.getLogger(__name__)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mailcatcher",
        description="Catch mail over SMTP and show it in a web inbox (MailCatcher-compatible).",
    )
    parser.add_argument("--ip", help="set the ip address of both servers")
    parser.add_argument("--smtp-ip", default="127.0.0.1", help="default: %(default)s")
    parser.add_argument("--smtp-port", type=int, default=1025, help="default: %(default)s")
    parser.add_argument("--http-ip", default="127.0.0.1", help="default: %(default)s")
    parser.add_argument("--http-port", type=int, default=1080, help="default: %(default)s")
    parser.add_argument(
        "--messages-limit", type=_positive, metavar="N", help="keep only the newest N messages"
    )
    parser.add_argument(
        "--db", metavar="PATH", default=":memory:", help="SQLite file to keep mail across restarts"
    )
    parser.add_argument(
        "--max-message-size",
        type=_positive,
        default=DEFAULT_MAX_MESSAGE_SIZE,
        metavar="BYTES",
        help="refuse bigger messages with 552 (default: %(default)s)",
    )
    parser.add_argument(
        "--max-connections",
        type=_positive,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="open SMTP connections at most: over it, the longest-idle one outside a mail "
        "transaction is closed to make room, or the new one gets 421 (default: %(default)s)",
    )
    parser.add_argument(
        "--max-connections-per-client",
        type=_positive,
        default=DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
        metavar="N",
        help="open SMTP connections from one address at most (default: %(default)s)",
    )
    parser.add_argument(
        "--smtp-idle-timeout",
        type=_positive_seconds,
        default=DEFAULT_IDLE_TIMEOUT,
        metavar="SECONDS",
        help="close an SMTP connection with 421 once it has made no progress in a mail "
        "transaction (MAIL, RCPT, DATA) for this long; NOOP, RSET, HELO and EHLO do not "
        "count (default: %(default)s)",
    )
    parser.add_argument(
        "--smtp-session-max-seconds",
        type=_positive_seconds,
        default=DEFAULT_SESSION_MAX_SECONDS,
        metavar="SECONDS",
        help="close an SMTP connection with 421 once it is this old, whatever it is "
        "doing (default: %(default)s)",
    )
    parser.add_argument(
        "--http-max-connections",
        type=_positive,
        default=DEFAULT_HTTP_MAX_CONNECTIONS,
        metavar="N",
        help="open HTTP connections at most: over it, the longest-idle one is closed to make "
        "room, or the new one gets 503; websockets may hold half (default: %(default)s)",
    )
    parser.add_argument(
        "--http-idle-timeout",
        type=_positive_seconds,
        default=DEFAULT_HTTP_IDLE_TIMEOUT,
        metavar="SECONDS",
        help="close an HTTP connection that has not sent a whole request (head, or body) "
        "this long after connecting or after its last response, or that has not read "
        "a response for this long (default: %(default)s)",
    )
    parser.add_argument(
        "--block-remote-content",
        action="store_true",
        help="do not load remote images, styles and fonts in caught HTML (shown by default)",
    )
    parser.add_argument(
        "--http-path", default="/", metavar="PATH", help="serve everything under this path prefix"
    )
    parser.add_argument(
        "--http-host-allow",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests for this Host name (localhost and the --http-ip always)",
    )
    parser.add_argument(
        "--http-auth",
        type=_credentials,
        metavar="USER:PASSWORD",
        help="ask for these credentials (HTTP basic auth) on every page and API route",
    )
    parser.add_argument(
        "--release-smtp",
        type=_host_port,
        metavar="HOST:PORT",
        help="turn on release: send caught messages on through this SMTP server",
    )
    parser.add_argument("--release-starttls", action="store_true", help="use STARTTLS there")
    parser.add_argument(
        "--release-auth", type=_credentials, metavar="USER:PASSWORD", help="log in there"
    )
    parser.add_argument(
        "--release-to",
        type=re.compile,
        metavar="REGEX",
        help="release only to recipients matching this (default: any)",
    )
    parser.add_argument(
        "--no-quit", action="store_true", help="refuse DELETE / (which otherwise stops the sink)"
    )
    parser.add_argument(
        "-f",
        "--foreground",
        action="store_true",
        help="accepted for MailCatcher compatibility: this sink always runs in the foreground",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every HTTP request")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    options = parser.parse_args(argv)
    if options.ip:
        options.smtp_ip = options.http_ip = options.ip
    return options


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    logs.configure(options.verbose)  # every line escaped: much of it quotes clients
    smtp_log = logging.getLogger("mail.log")  # aiosmtpd's logger
    if not options.verbose:
        smtp_log.setLevel(logging.WARNING)
    # aiosmtpd itself sets the attribute it then warns about, on every AUTH.
    smtp_log.addFilter(lambda record: "login_data is deprecated" not in record.getMessage())
    with contextlib.suppress(KeyboardInterrupt):  # a Ctrl-C before the handlers are in place
        return asyncio.run(serve(options))
    return 0


async def serve(options: argparse.Namespace) -> int:
    """Run until SIGINT or SIGTERM; returns the exit status."""
    store = Store(options.db)
    mailbox = Mailbox(store, Bus(), options.messages_limit)
    stop = asyncio.Event()
    web_options = WebOptions(
        block_remote=options.block_remote_content,
        http_path=options.http_path,
        hosts=frozenset([*options.http_host_allow, options.http_ip]),
        auth=options.http_auth,
        relay=_relay(options),
        limits=HttpLimits(options.http_max_connections, options.http_idle_timeout),
    )
    app = create_app(mailbox, web_options, quit=None if options.no_quit else stop.set)
    runner = web.AppRunner(
        app,
        access_log=log if options.verbose else None,
        shutdown_timeout=2.0,
        keepalive_timeout=web_options.limits.idle_timeout,  # aiohttp's own: an hour
    )
    smtp_server = sessions = http_server = None
    try:
        asyncio.get_running_loop().set_exception_handler(_quiet_when_out_of_handles())
        limits = ConnectionLimits(
            options.max_connections,
            options.max_connections_per_client,
            options.smtp_idle_timeout,
            options.smtp_session_max_seconds,
        )
        smtp_server, sessions = await start_smtp(
            mailbox, options.smtp_ip, options.smtp_port, options.max_message_size, limits
        )
        await runner.setup()
        http_server = await start_http(
            runner, options.http_ip, options.http_port, web_options.limits
        )
    except OSError as error:
        log.error("~~> ERROR: cannot listen (%s). Is MailCatcher already running?", error)
        return 1
    else:
        log.info("==> smtp://%s:%d", options.smtp_ip, options.smtp_port)
        log.info("==> http://%s:%d%s", options.http_ip, options.http_port, app[PREFIX] + "/")
        await _until_signalled(stop)
        log.info("shutting down")
        return 0
    finally:
        if smtp_server is not None:
            smtp_server.close()
            close_sessions(sessions)
        if http_server is not None:
            http_server.close()
        await runner.cleanup()
        store.close()


async def _until_signalled(stop: asyncio.Event) -> None:
    """Until SIGINT or SIGTERM, or until ``stop`` is set (DELETE / does that)."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


# What accept() fails with when the process or system is out of file handles (or
# memory): asyncio logs each, with a traceback, and retries a second later.
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def _quiet_when_out_of_handles():
    """The loop's exception handler: accept errors for lack of handles are logged once
    per burst (asyncio logged them in a loop, hundreds of MB in minutes); the rest
    as asyncio does."""
    burst = logs.BurstLog(log)

    def handler(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        error = context.get("exception")
        if isinstance(error, OSError) and error.errno in _OUT_OF_RESOURCES:
            burst(logging.ERROR, "cannot accept connections: %s", error)
        else:
            loop.default_exception_handler(context)

    return handler


def _relay(options: argparse.Namespace) -> Relay | None:
    if options.release_smtp is None:
        return None
    host, port = options.release_smtp
    return Relay(host, port, options.release_starttls, options.release_auth, options.release_to)


def _host_port(text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon:
        return text, 25
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError("give it as HOST:PORT")
    return host, int(port)


def _credentials(text: str) -> tuple[str, str]:
    user, colon, password = text.partition(":")
    if not (user and colon and password):
        raise argparse.ArgumentTypeError("give it as USER:PASSWORD")
    return user, password


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value
