"""`mailcatcher [options]`: MailCatcher's flags, both servers on one asyncio loop.

aiosmtpd already runs on asyncio, so the web side (aiohttp) shares its loop: one
process, one thread touching the store, no locks. SIGINT and SIGTERM (honcho sends
both on Ctrl-C) stop both servers and exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence

from aiohttp import web

from mailcatcher import __version__
from mailcatcher.events import Bus
from mailcatcher.mailbox import Mailbox
from mailcatcher.smtp import DEFAULT_MAX_MESSAGE_SIZE, close_sessions, start_smtp
from mailcatcher.store import Store
from mailcatcher.web import create_app

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
        "-f", "--foreground", action="store_true", help="accepted for MailCatcher compatibility"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every HTTP request")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    options = parser.parse_args(argv)
    if options.ip:
        options.smtp_ip = options.http_ip = options.ip
    return options


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if options.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
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
    runner = web.AppRunner(
        create_app(mailbox), access_log=log if options.verbose else None, shutdown_timeout=2.0
    )
    smtp_server = sessions = None
    try:
        smtp_server, sessions = await start_smtp(
            mailbox, options.smtp_ip, options.smtp_port, options.max_message_size
        )
        await runner.setup()
        await web.TCPSite(runner, options.http_ip, options.http_port).start()
    except OSError as error:
        log.error("~~> ERROR: cannot listen (%s). Is MailCatcher already running?", error)
        return 1
    else:
        log.info("==> smtp://%s:%d", options.smtp_ip, options.smtp_port)
        log.info("==> http://%s:%d", options.http_ip, options.http_port)
        await _until_signalled()
        log.info("shutting down")
        return 0
    finally:
        if smtp_server is not None:
            smtp_server.close()
            close_sessions(sessions)
        await runner.cleanup()
        store.close()


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value
