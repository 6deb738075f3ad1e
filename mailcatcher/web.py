"""The HTTP side: MailCatcher's API and websocket, plus the inbox page.

Routes, status codes and JSON shapes follow MailCatcher (sj26/mailcatcher,
lib/mail_catcher/web/application.rb) so its clients work unchanged. Anything extra
is opt-in: `?q=` on `GET /messages`, and `/messages/:id/attachments/:n` for
attachments that have no Content-ID (MailCatcher gives those no usable link).

Caught mail is hostile input. Every response under /messages carries a
Content-Security-Policy with `sandbox` and no script source, so an HTML body or
part cannot run script even when opened directly, and the inbox page itself only
runs its own script file. What an email may do: open its links in a new tab (the
served HTML gets `<base target="_blank">`, and both sandboxes allow popups that
escape them), and load remote images, styles and fonts, as it would in a mail
client, unless the sink runs with `--block-remote-content`.

Connections are capped and timed out in http_limits.py; here, the two limits that
need the routes: websockets (the only requests that last) may hold half of the
connections, so the inbox's own requests always find room, and a request body
must arrive within the idle timeout.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import logging
import re
import smtplib
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from aiohttp import WSCloseCode, web

from mailcatcher.events import OVERFLOW, Subscription
from mailcatcher.http_limits import HttpLimits, track_requests
from mailcatcher.mailbox import Mailbox
from mailcatcher.mime import HTML_TYPES, clean_text
from mailcatcher.release import Relay, ReleaseRefused
from mailcatcher.search import BadQuery

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
STATIC_DIR = PACKAGE_DIR / "static"
INBOX_PAGE = PACKAGE_DIR / "templates" / "inbox.html"
INBOX_SCRIPT = "assets/inbox.js"  # the page's only script (templates/inbox.html)

# script-src names the page's one script file, not 'self': under 'self', any slip that
# let markup into the page could load a caught part (/messages/:id/parts/:cid, same
# origin) as a script. A source with a path needs the host, so it is filled in per
# request ({script}); CSP lets an http: source match the same URL over https.
PAGE_CSP = (
    "default-src 'none'; script-src {script}; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
# Scripts, forms and same-origin access stay off; popups (links opening in a new tab)
# are let out of the sandbox, so the page a link opens works normally.
SANDBOX = "allow-popups allow-popups-to-escape-sandbox"
MESSAGE_CSP = (
    "default-src 'none'; img-src {remote}'self' data:; style-src {remote}'unsafe-inline'; "
    "font-src {remote}'self' data:; base-uri 'none'; form-action 'none'; "
    f"frame-ancestors 'self'; sandbox {SANDBOX}"
)
CID_REFERENCE = re.compile(r"cid:([^'\"> ]+)", re.IGNORECASE)
# Something an HTML body would fetch from another server: an image, a stylesheet, a font.
REMOTE_REFERENCE = re.compile(
    r"""(?:\b(?:src|href|background)\s*=\s*["']?|url\(\s*["']?|@import\s+["'])(?:https?:)?//""",
    re.IGNORECASE,
)
# Never across another "<": with `[^>]*`, every "<head" of a body with no ">" after
# it rescanned to the end (180 kB of "<head " took 6 s per view, on the event loop).
HEAD_OPEN = re.compile(r"<head\b[^<>]*>", re.IGNORECASE)
LINKS_IN_NEW_TAB = '<base target="_blank">'

MAILBOX = web.AppKey("mailbox", Mailbox)
RELAY = web.AppKey("relay", object)
PREFIX = web.AppKey("prefix", str)
BLOCK_REMOTE = web.AppKey("block_remote", bool)
SOCKETS = web.AppKey("sockets", weakref.WeakSet)
LIMITS = web.AppKey("limits", HttpLimits)


@dataclass(frozen=True)
class WebOptions:
    """The HTTP side's flags (mailcatcher/cli.py)."""

    block_remote: bool = False  # --block-remote-content
    http_path: str = "/"  # --http-path: a prefix for every route; the page's links are relative
    hosts: frozenset[str] = frozenset()  # Host names accepted besides localhost and loopback
    auth: tuple[str, str] | None = None  # --http-auth user:password
    relay: Relay | None = None  # --release-smtp and friends; None: release is off
    limits: HttpLimits = HttpLimits()  # --http-max-connections, --http-idle-timeout


def create_app(
    mailbox: Mailbox, options: WebOptions = WebOptions(), quit: Callable[[], None] | None = None
) -> web.Application:
    """``quit``: what `DELETE /` calls to stop the sink, as MailCatcher's does; None
    (--no-quit) answers 403."""
    app = web.Application(
        middlewares=[track_requests, only_known_hosts(options.hosts), basic_auth(options.auth)]
    )
    app[MAILBOX] = mailbox
    app[BLOCK_REMOTE] = options.block_remote
    app[RELAY] = options.relay
    app[SOCKETS] = weakref.WeakSet()
    app[LIMITS] = options.limits
    path = options.http_path.strip("/")
    app[PREFIX] = prefix = f"/{path}" if path else ""
    page = INBOX_PAGE.read_text(encoding="utf-8")

    async def inbox(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    async def quit_sink(request: web.Request) -> web.Response:
        if quit is None:
            raise web.HTTPForbidden(text="this sink runs with --no-quit")
        log.info("quit requested over HTTP (DELETE %s/)", prefix)
        asyncio.get_running_loop().call_later(0.1, quit)  # after this answer has gone
        return web.Response(status=204)

    async def to_inbox(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{prefix}/")  # the page's relative links need the slash

    add = app.router
    if prefix:
        add.add_get(prefix, to_inbox)
    add.add_get(f"{prefix}/", inbox)
    add.add_delete(f"{prefix}/", quit_sink)
    add.add_static(f"{prefix}/assets", STATIC_DIR)
    add.add_get(f"{prefix}/messages", messages)
    add.add_delete(f"{prefix}/messages", clear)
    message = f"{prefix}/messages/{{id:\\d+}}"
    add.add_get(f"{message}.json", message_json)
    add.add_get(f"{message}.html", message_html)
    add.add_get(f"{message}.plain", message_plain)
    add.add_get(f"{message}.source", message_source)
    add.add_get(f"{message}.eml", message_eml)
    add.add_get(f"{message}/parts/{{cid:.+}}", message_part)
    add.add_get(f"{message}/attachments/{{position:\\d+}}", message_attachment)
    add.add_delete(message, delete_message)
    add.add_post(f"{message}/release", release_message)
    app.on_response_prepare.append(security_headers)
    app.on_shutdown.append(close_sockets)
    return app


# The most rows one page of `GET /messages?limit=` holds.
PAGE_MAX = 1000

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def only_known_hosts(hosts: frozenset[str]):
    """Refuse a request whose Host is not one this sink is reached by: a web page that
    points its own name at 127.0.0.1 (DNS rebinding) could otherwise read caught mail."""
    allowed = LOOPBACK_HOSTS | {host.lower() for host in hosts}

    @web.middleware
    async def middleware(request: web.Request, handler):
        host = urlsplit(f"//{request.host}").hostname or ""
        if host not in allowed and not host.endswith(".localhost"):
            raise web.HTTPMisdirectedRequest(
                text=f"Host {host!r} is not this mail catcher's (add it with --http-host-allow)"
            )
        return await handler(request)

    return middleware


def basic_auth(credentials: tuple[str, str] | None):
    """HTTP basic auth on every route (--http-auth), checked in constant time."""
    expected = b"Basic " + base64.b64encode(":".join(credentials).encode()) if credentials else b""

    @web.middleware
    async def middleware(request: web.Request, handler):
        if credentials and not hmac.compare_digest(
            request.headers.get("Authorization", "").encode(), expected
        ):
            raise web.HTTPUnauthorized(
                headers={"WWW-Authenticate": 'Basic realm="mailcatcher", charset="UTF-8"'}
            )
        return await handler(request)

    return middleware


async def messages(request: web.Request) -> web.StreamResponse:
    if web.WebSocketResponse().can_prepare(request).ok:
        return await live_updates(request)
    store, query = request.app[MAILBOX].store, request.query
    try:
        if "limit" not in query:  # MailCatcher's list: all of them, oldest first
            return web.json_response(store.messages(query.get("q")))
        limit, offset = _count(query, "limit", PAGE_MAX), _count(query, "offset")
        rows, total = store.page(query.get("q"), limit, offset, query.get("order") != "oldest")
    except (BadQuery, ValueError) as exc:
        return _error(400, str(exc))
    return web.json_response(rows, headers={"X-Total-Count": str(total)})


def _count(query, name: str, most: int | None = None) -> int:
    """A paging number, 0 to ``most`` (or to SQLite's largest integer, past which
    binding it raised); anything else is the client's error: ValueError, a 400."""
    most = MAX_ID if most is None else most
    value = _integer(query.get(name, "0"))
    if value is None or not 0 <= value <= most:
        raise ValueError(f"{name} must be a whole number from 0 to {most}")
    return value


async def clear(request: web.Request) -> web.Response:
    request.app[MAILBOX].clear()
    return web.Response(status=204)


async def message_json(request: web.Request) -> web.Response:
    store = request.app[MAILBOX].store
    message_id = _id(request)
    message = store.message(message_id)
    if message is None:
        raise web.HTTPNotFound()
    message["formats"] = store.formats(message_id)
    message["attachments"] = [
        {
            "cid": part["cid"],
            "type": part["type"],
            "filename": part["filename"],
            "size": part["size"],
            "href": _part_href(message_id, part),
        }
        for part in store.attachments(message_id)
    ]
    if request.app[BLOCK_REMOTE]:  # the inbox says so: the email looks different
        html = store.body_part(message_id, HTML_TYPES)
        blocked = html is not None and has_remote_content(html["body"].decode("utf-8", "replace"))
        message["remote_content_blocked"] = blocked
    return web.json_response(message)


async def message_html(request: web.Request) -> web.Response:
    message_id = _id(request)
    part = request.app[MAILBOX].store.body_part(message_id, HTML_TYPES)
    if part is None:
        raise web.HTTPNotFound()
    html = part["body"].decode("utf-8", "replace")
    # As MailCatcher does: point cid: references at this message's own parts.
    html = CID_REFERENCE.sub(lambda match: f"{message_id}/parts/{match[1]}", html)
    return web.Response(text=links_in_new_tab(html), content_type="text/html", charset="utf-8")


def links_in_new_tab(html: str) -> str:
    """A <base target> first in the head (or the document): links open in a new tab.
    The email's own <base href> stays blocked by the CSP's base-uri."""
    head = HEAD_OPEN.search(html)
    at = head.end() if head else 0
    return f"{html[:at]}{LINKS_IN_NEW_TAB}{html[at:]}"


def has_remote_content(html: str) -> bool:
    return REMOTE_REFERENCE.search(html) is not None


async def message_plain(request: web.Request) -> web.Response:
    part = request.app[MAILBOX].store.body_part(_id(request), ["text/plain"])
    if part is None:
        raise web.HTTPNotFound()
    return web.Response(body=part["body"], content_type="text/plain", charset="utf-8")


async def message_source(request: web.Request) -> web.Response:
    return _source(request, "text/plain", charset="utf-8")


async def message_eml(request: web.Request) -> web.Response:
    return _source(request, "message/rfc822")


async def message_part(request: web.Request) -> web.Response:
    store = request.app[MAILBOX].store
    return _part_response(store.part_by_cid(_id(request), request.match_info["cid"]))


async def message_attachment(request: web.Request) -> web.Response:
    store = request.app[MAILBOX].store
    return _part_response(store.part_at(_id(request), _path_number(request, "position")))


async def release_message(request: web.Request) -> web.Response:
    """Send the message, as caught, to the given recipients through the flags' relay.
    JSON only: a page on another site cannot send that without a CORS preflight."""
    relay: Relay | None = request.app[RELAY]
    if relay is None:
        return _error(503, "Release is off: start the sink with --release-smtp HOST:PORT.")
    if request.content_type != "application/json":
        return _error(415, "Send a JSON body with Content-Type: application/json.")
    message_id = _id(request)
    store = request.app[MAILBOX].store
    message, source = store.message(message_id), store.source(message_id)
    if message is None or source is None:
        raise web.HTTPNotFound()
    try:
        async with asyncio.timeout(request.app[LIMITS].idle_timeout):
            body = await request.json()
        recipients = relay.check(body.get("recipients") if isinstance(body, dict) else None)
    except TimeoutError:
        response = _error(408, "The body took too long to arrive.")
        response.force_close()
        return response
    except ValueError:
        return _error(400, "The body is not JSON.")
    except ReleaseRefused as refused:
        return _error(422, str(refused))
    sender = message["sender"].removeprefix("<").removesuffix(">")
    try:
        await asyncio.get_running_loop().run_in_executor(
            None, relay.send, sender, recipients, source
        )
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("release of message %d to %s failed: %s", message_id, recipients, exc)
        return _error(502, f"The relay {relay.host}:{relay.port} refused or failed: {exc}")
    log.info("==> released message %d to %s via %s", message_id, recipients, relay.host)
    return web.json_response({"released_to": recipients})


def _error(status: int, text: str) -> web.Response:
    return web.json_response({"error": text}, status=status)


async def delete_message(request: web.Request) -> web.Response:
    if not request.app[MAILBOX].delete(_id(request)):
        raise web.HTTPNotFound()
    return web.Response(status=204)


async def live_updates(request: web.Request) -> web.WebSocketResponse:
    """MailCatcher's websocket: `add`, `remove` and `clear` frames as they happen."""
    origin = request.headers.get("Origin")
    if origin and urlsplit(origin).netloc != request.host:
        # Browsers let any site open a websocket here; only our own page may listen.
        raise web.HTTPForbidden(text="cross-origin websocket refused")
    sockets = request.app[SOCKETS]
    if len(sockets) >= request.app[LIMITS].max_websockets:
        # Each holds a connection for as long as it is open: past half of the cap,
        # they could leave no room for the inbox's own requests.
        raise web.HTTPServiceUnavailable(
            text="too many live updates open; the page will retry", headers={"Retry-After": "5"}
        )
    socket = web.WebSocketResponse(heartbeat=30)
    sockets.add(socket)  # counted from now, so none slips in while it is prepared
    try:
        # Subscribe before the handshake completes, so a client that sees the socket
        # open and then sends mail is sure to hear about it.
        with request.app[MAILBOX].bus.subscribe() as subscription:
            await socket.prepare(request)
            pump = asyncio.create_task(_pump(subscription, socket))
            try:
                async for _ in socket:
                    pass  # clients have nothing to say; reading notices when they leave
            finally:
                pump.cancel()
    finally:
        sockets.discard(socket)
    return socket


async def _pump(subscription: Subscription, socket: web.WebSocketResponse) -> None:
    with contextlib.suppress(ConnectionError):
        while (frame := await subscription.get()) is not OVERFLOW:
            await socket.send_str(frame)
        await socket.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"fell behind")


async def close_sockets(app: web.Application) -> None:
    for socket in list(app[SOCKETS]):
        if socket.prepared:
            await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    path = request.path.removeprefix(request.app[PREFIX])
    if path == "/":
        script = f"{request.scheme}://{request.host}{request.app[PREFIX]}/{INBOX_SCRIPT}"
        response.headers["Content-Security-Policy"] = PAGE_CSP.format(script=script)
        response.headers["X-Frame-Options"] = "DENY"
    elif path.startswith("/messages"):
        remote = "" if request.app[BLOCK_REMOTE] else "https: http: "
        response.headers["Content-Security-Policy"] = MESSAGE_CSP.format(remote=remote)
    if not path.startswith("/assets/"):  # the list and each message show addresses
        response.headers.setdefault("Cache-Control", "no-store")


# SQLite's integers are 64-bit signed: a bigger id names no message.
MAX_ID = 2**63 - 1


def _id(request: web.Request) -> int:
    return _path_number(request, "id")


def _path_number(request: web.Request, name: str) -> int:
    """A number in the path (the route's pattern allows only digits). One past
    SQLite's integers names nothing: 404, as MailCatcher answers for big ids."""
    value = _integer(request.match_info[name])
    if value is None or not 0 <= value <= MAX_ID:
        raise web.HTTPNotFound()
    return value


def _integer(text: str) -> int | None:
    """``text`` as an int, or None. int() itself refuses over 4,300 digits (ValueError),
    so a longer number is refused here before it is read."""
    if len(text) > _MAX_DIGITS:
        return None
    try:
        return int(text)
    except ValueError:
        return None


# Enough for any number up to MAX_ID, with some leading zeros or a sign.
_MAX_DIGITS = 40


def _source(request: web.Request, content_type: str, charset: str | None = None) -> web.Response:
    source = request.app[MAILBOX].store.source(_id(request))
    if source is None:
        raise web.HTTPNotFound()
    return web.Response(body=source, content_type=content_type, charset=charset)


# The JavaScript MIME types of the WHATWG MIME Sniffing standard: a browser runs a
# <script src>, worker or service worker only when its response has one of these.
SCRIPT_TYPES = frozenset(
    {
        "application/ecmascript",
        "application/javascript",
        "application/x-ecmascript",
        "application/x-javascript",
        "text/ecmascript",
        "text/javascript",
        *(f"text/javascript1.{n}" for n in range(6)),
        "text/jscript",
        "text/livescript",
        "text/x-ecmascript",
        "text/x-javascript",
    }
)
# What a part may be shown as in place: images (the HTML view's cid: images), text,
# and HTML (under the sandboxing CSP). Anything else is served as a download.
DISPLAYED_TYPES = ("image/", "text/plain", "text/html", "application/xhtml+xml")


def _part_response(part: dict | None) -> web.Response:
    """A caught part, as MailCatcher serves it (its own type, so cid: images show in
    the HTML view), except that a part of a script type goes out as
    application/octet-stream: with nosniff (on every response) no browser will run
    it, whatever page points a <script src> at it. And a part that is neither an
    image nor text is a download (Content-Disposition: attachment), never a page."""
    if part is None:
        raise web.HTTPNotFound()
    kind, charset = part["type"], part["charset"]
    if kind.lower() in SCRIPT_TYPES:
        kind, charset = "application/octet-stream", None
    response = web.Response(body=part["body"], content_type=kind, charset=charset)
    if part["is_attachment"] or not kind.lower().startswith(DISPLAYED_TYPES):
        response.headers["Content-Disposition"] = _attachment_disposition(part["filename"])
    return response


def _part_href(message_id: int, part: dict) -> str:
    if part["cid"]:
        return f"/messages/{message_id}/parts/{quote(part['cid'], safe='')}"
    return f"/messages/{message_id}/attachments/{part['position']}"


def _attachment_disposition(filename: str | None) -> str:
    """RFC 6266 header for a filename chosen by whoever sent the mail."""
    name = clean_text(re.split(r"[/\\]", filename or "")[-1]).strip(". ") or "attachment"
    fallback = name.encode("ascii", "replace").decode("ascii").replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
