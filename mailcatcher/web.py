"""The HTTP side: MailCatcher's API and websocket, plus the inbox page.

Routes, status codes and JSON shapes follow MailCatcher (sj26/mailcatcher,
lib/mail_catcher/web/application.rb) so its clients work unchanged. Anything extra
is opt-in: `?q=` on `GET /messages`, and `/messages/:id/attachments/:n` for
attachments that have no Content-ID (MailCatcher gives those no usable link).

Caught mail is hostile input. Every response under /messages carries a
Content-Security-Policy with `sandbox` and no script source, so an HTML body or
part cannot run script even when opened directly, and the inbox page itself only
runs its own script file.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import weakref
from pathlib import Path
from urllib.parse import quote, urlsplit

from aiohttp import WSCloseCode, web

from mailcatcher.events import OVERFLOW, Subscription
from mailcatcher.mailbox import Mailbox
from mailcatcher.mime import HTML_TYPES, clean_text

PACKAGE_DIR = Path(__file__).resolve().parent
STATIC_DIR = PACKAGE_DIR / "static"
INBOX_PAGE = PACKAGE_DIR / "templates" / "inbox.html"

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
MESSAGE_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
    "font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'; "
    "sandbox"
)
CID_REFERENCE = re.compile(r"cid:([^'\"> ]+)", re.IGNORECASE)

MAILBOX = web.AppKey("mailbox", Mailbox)
SOCKETS = web.AppKey("sockets", weakref.WeakSet)


def create_app(mailbox: Mailbox) -> web.Application:
    app = web.Application()
    app[MAILBOX] = mailbox
    app[SOCKETS] = weakref.WeakSet()
    page = INBOX_PAGE.read_text(encoding="utf-8")

    async def inbox(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app.router.add_get("/", inbox)
    app.router.add_static("/assets", STATIC_DIR)
    app.router.add_get("/messages", messages)
    app.router.add_delete("/messages", clear)
    app.router.add_get(r"/messages/{id:\d+}.json", message_json)
    app.router.add_get(r"/messages/{id:\d+}.html", message_html)
    app.router.add_get(r"/messages/{id:\d+}.plain", message_plain)
    app.router.add_get(r"/messages/{id:\d+}.source", message_source)
    app.router.add_get(r"/messages/{id:\d+}.eml", message_eml)
    app.router.add_get(r"/messages/{id:\d+}/parts/{cid:.+}", message_part)
    app.router.add_get(r"/messages/{id:\d+}/attachments/{position:\d+}", message_attachment)
    app.router.add_delete(r"/messages/{id:\d+}", delete_message)
    app.on_response_prepare.append(security_headers)
    app.on_shutdown.append(close_sockets)
    return app


async def messages(request: web.Request) -> web.StreamResponse:
    if web.WebSocketResponse().can_prepare(request).ok:
        return await live_updates(request)
    mailbox = request.app[MAILBOX]
    return web.json_response(mailbox.store.messages(request.query.get("q")))


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
    return web.json_response(message)


async def message_html(request: web.Request) -> web.Response:
    message_id = _id(request)
    part = request.app[MAILBOX].store.body_part(message_id, HTML_TYPES)
    if part is None:
        raise web.HTTPNotFound()
    html = part["body"].decode("utf-8", "replace")
    # As MailCatcher does: point cid: references at this message's own parts.
    html = CID_REFERENCE.sub(lambda match: f"{message_id}/parts/{match[1]}", html)
    return web.Response(text=html, content_type=part["type"], charset="utf-8")


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
    return _part_response(store.part_at(_id(request), int(request.match_info["position"])))


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
    socket = web.WebSocketResponse(heartbeat=30)
    # Subscribe before the handshake completes, so a client that sees the socket
    # open and then sends mail is sure to hear about it.
    with request.app[MAILBOX].bus.subscribe() as subscription:
        await socket.prepare(request)
        request.app[SOCKETS].add(socket)
        pump = asyncio.create_task(_pump(subscription, socket))
        try:
            async for _ in socket:
                pass  # clients have nothing to say; reading notices when they leave
        finally:
            pump.cancel()
    return socket


async def _pump(subscription: Subscription, socket: web.WebSocketResponse) -> None:
    with contextlib.suppress(ConnectionError):
        while (frame := await subscription.get()) is not OVERFLOW:
            await socket.send_str(frame)
        await socket.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"fell behind")


async def close_sockets(app: web.Application) -> None:
    for socket in list(app[SOCKETS]):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    if request.path == "/":
        response.headers["Content-Security-Policy"] = PAGE_CSP
        response.headers["X-Frame-Options"] = "DENY"
    elif request.path.startswith("/messages"):
        response.headers["Content-Security-Policy"] = MESSAGE_CSP


def _id(request: web.Request) -> int:
    return int(request.match_info["id"])


def _source(request: web.Request, content_type: str, charset: str | None = None) -> web.Response:
    source = request.app[MAILBOX].store.source(_id(request))
    if source is None:
        raise web.HTTPNotFound()
    return web.Response(body=source, content_type=content_type, charset=charset)


def _part_response(part: dict | None) -> web.Response:
    if part is None:
        raise web.HTTPNotFound()
    response = web.Response(body=part["body"], content_type=part["type"], charset=part["charset"])
    if part["is_attachment"]:
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
