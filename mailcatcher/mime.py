"""Turn a raw RFC 5322 message into what the inbox shows: subject, type and leaf parts.

Parsing happens once, when the message arrives, so that reading the inbox never
re-parses MIME. Caught mail is untrusted and often broken (that is what people
test with), so nothing here may raise: whatever cannot be parsed degrades to
"show the raw text" instead of losing the message.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesParser

log = logging.getLogger(__name__)

HTML_TYPES = ("text/html", "application/xhtml+xml")
_MIME_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Part:
    """One leaf of the MIME tree, transfer-decoded; text parts are re-encoded as UTF-8."""

    cid: str | None
    type: str
    is_attachment: bool
    filename: str | None
    charset: str | None
    body: bytes


@dataclass(frozen=True)
class ParsedMessage:
    subject: str | None
    type: str
    parts: tuple[Part, ...]


def parse(source: bytes) -> ParsedMessage:
    """Parse `source`; on any failure keep the whole source as one plain-text part."""
    try:
        message = BytesParser(policy=policy.default).parsebytes(source)
        return ParsedMessage(
            subject=_subject(message),
            type=_content_type(message),
            parts=tuple(_part(leaf) for leaf in _leaves(message)),
        )
    except Exception:  # the email package has many ways to fail on hostile input
        log.warning("could not parse a message; keeping its raw source", exc_info=True)
        return ParsedMessage(
            None, "text/plain", (Part(None, "text/plain", False, None, None, source),)
        )


def _leaves(message: Message) -> list[Message]:
    leaves = [part for part in message.walk() if not part.is_multipart()]
    return leaves or [message]


def _part(leaf: Message) -> Part:
    kind = _content_type(leaf)
    if kind.startswith("multipart/"):
        kind = "text/plain"  # a multipart whose boundaries never parsed: show its text
    filename = _safe(lambda: leaf.get_filename())
    disposition = _safe(lambda: leaf.get_content_disposition())
    body = _payload(leaf)
    charset = None
    if kind.startswith("text/"):
        body = _to_utf8(body, _safe(lambda: leaf.get_content_charset()))
        charset = "utf-8"
    return Part(
        cid=_content_id(leaf),
        type=kind,
        is_attachment=filename is not None or disposition == "attachment",
        filename=clean_text(filename) if filename is not None else None,
        charset=charset,
        body=body,
    )


def _payload(leaf: Message) -> bytes:
    decoded = _safe(lambda: leaf.get_payload(decode=True))
    if isinstance(decoded, bytes):
        return decoded
    raw = leaf.get_payload()
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return b""


def _to_utf8(body: bytes, charset: str | None) -> bytes:
    try:
        text = body.decode(charset or "utf-8", "replace")
    except LookupError:  # an unknown charset name
        text = body.decode("utf-8", "replace")
    return text.encode("utf-8", "replace")


def _content_type(part: Message) -> str:
    kind = _safe(lambda: part.get_content_type()) or "text/plain"
    return kind if _MIME_TYPE.match(kind) else "application/octet-stream"


def _content_id(part: Message) -> str | None:
    value = _header(part, "Content-ID")
    if not value:
        return None
    return clean_text(value).strip().removeprefix("<").removesuffix(">").strip() or None


def _subject(message: Message) -> str | None:
    value = _header(message, "Subject")
    return clean_text(value) if value is not None else None


def _header(message: Message, name: str) -> str | None:
    try:
        value = message.get(name)
    except Exception:  # a header the default policy cannot parse: fall back to its raw text
        value = _raw_header(message, name)
    return None if value is None else str(value)


def _raw_header(message: Message, name: str) -> str | None:
    for key, value in message.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return None


def clean_text(value: str) -> str:
    """Collapse CR, LF and other control characters so a header value stays on one line."""
    return _CONTROL.sub(" ", value).strip()


def _safe(call):
    try:
        return call()
    except Exception:
        return None
