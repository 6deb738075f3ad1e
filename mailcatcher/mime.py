"""Turn a raw RFC 5322 message into what the inbox shows: subject, type and leaf parts.

Parsing happens once, when the message arrives, so that reading the inbox never
re-parses MIME. It uses the email package's compat32 policy, which leaves headers
as text until asked: the default policy's header objects cost most of the sink's
time per message. Only the headers shown or searched are decoded (RFC 2047 words,
raw UTF-8). Caught mail is untrusted and often broken (that is what people
test with), so nothing here may raise: whatever cannot be parsed degrades to
"show the raw text" instead of losing the message.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from email import policy
from email.header import Header, decode_header
from email.message import Message
from email.parser import BytesParser

from mailcatcher import encoded_words

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
    from_header: str = ""
    to_header: str = ""  # To and Cc, for the search's to:
    tags: tuple[str, ...] = ()  # from X-Tags
    search_text: str = ""  # the text of its bodies, for the search


# How much of a message's body text the search looks through.
SEARCH_TEXT_MAX_CHARS = 16_384
_TAG_SPLIT = re.compile(r"[,\s]+")
# A tag, for leaving markup out of the search text: "<" to the next ">", never across
# another "<". That exclusion keeps the search linear: with `<[^>]*>` every "<" of a
# body that has no ">" rescans to its end (64 KiB of "<" took seconds per part).
# html.parser is no help on Python 3.11: it is quadratic on unclosed tags too.
_HTML_TAG = re.compile(r"<[^<>]*>")
# The email package's parameter parser (charset, filename, boundary) is quadratic in
# a header's length: a Content-Type of 40,000 ";" in quotes took 3 s. Real ones,
# RFC 2231 filenames included, stay far below this.
PARAM_HEADER_MAX_CHARS = 4096


class _Message(Message):
    """compat32's Message, but it reads no parameters out of a header longer than
    PARAM_HEADER_MAX_CHARS (as if it had none): the parser asks for each multipart's
    boundary this way, so a hostile header would stall parsing before any guard here."""

    def get_param(self, param, failobj=None, header="content-type", unquote=True):
        if _too_long(self.get(header)):
            return failobj
        return super().get_param(param, failobj, header, unquote)

    def get_params(self, failobj=None, header="content-type", unquote=True):
        if _too_long(self.get(header)):
            return failobj
        return super().get_params(failobj, header, unquote)


def _too_long(value: object) -> bool:
    return value is not None and len(str(value)) > PARAM_HEADER_MAX_CHARS


def parse(source: bytes) -> ParsedMessage:
    """Parse `source`; on any failure keep the whole source as one plain-text part."""
    try:
        message = BytesParser(_Message, policy=policy.compat32).parsebytes(source)
        # One budget of charset lookups for the message, spent on the headers shown first.
        charsets = encoded_words.Charsets()
        subject = _subject(message, charsets)
        from_header = clean_text(_header(message, "From", charsets) or "")
        recipients = (_header(message, h, charsets) or "" for h in ("To", "Cc"))
        to_header = clean_text(" ".join(recipients))
        tags = _tags(_header(message, "X-Tags", charsets) or "")
        parts = _with_content_ids([_part(leaf, charsets) for leaf in _leaves(message)])
        return ParsedMessage(
            subject=subject,
            type=_content_type(message),
            parts=parts,
            from_header=from_header,
            to_header=to_header,
            tags=tags,
            search_text=_search_text(parts),
        )
    except Exception:  # the email package has many ways to fail on hostile input
        log.warning("could not parse a message; keeping its raw source", exc_info=True)
        return ParsedMessage(
            None, "text/plain", (Part(None, "text/plain", False, None, None, source),)
        )


def _tags(header: str) -> tuple[str, ...]:
    """X-Tags: a comma- or space-separated list, as Mailpit reads it."""
    return tuple(dict.fromkeys(t.lower() for t in _TAG_SPLIT.split(clean_text(header)) if t))


def _search_text(parts: tuple[Part, ...]) -> str:
    """The bodies' text, markup left out. It stops once it has enough, so a message of
    thousands of parts costs no more than one of a few."""
    texts, length = [], 0
    for part in parts:
        if length >= SEARCH_TEXT_MAX_CHARS:
            break
        if part.is_attachment or not part.type.startswith("text/"):
            continue
        text = part.body[: SEARCH_TEXT_MAX_CHARS * 4].decode("utf-8", "replace")
        texts.append(_HTML_TAG.sub(" ", text) if part.type == "text/html" else text)
        length += len(texts[-1]) + 1
    return " ".join(texts)[:SEARCH_TEXT_MAX_CHARS]


def _leaves(message: Message) -> list[Message]:
    """The leaf parts, in order. A forwarded message (message/rfc822) is one leaf, an
    attachment: its own HTML and text must not become this message's."""
    if message.get_content_type() == "message/rfc822" or not message.is_multipart():
        return [message]
    parts = message.get_payload()
    leaves = [leaf for part in parts if isinstance(part, Message) for leaf in _leaves(part)]
    return leaves or [message]


def _with_content_ids(parts: list[Part]) -> tuple[Part, ...]:
    """Every attachment gets a Content-ID, as MailCatcher's mail gem generates one:
    its clients build `parts/:cid` links from it. Kept with the part, so it is stable."""
    return tuple(
        part if part.cid or not part.is_attachment else replace(part, cid=f"part{n}@mailcatcher")
        for n, part in enumerate(parts)
    )


def _part(leaf: Message, charsets: encoded_words.Charsets) -> Part:
    kind = _content_type(leaf)
    if kind.startswith("multipart/"):
        kind = "text/plain"  # a multipart whose boundaries never parsed: show its text
    if kind == "message/rfc822":
        return _forwarded(leaf, charsets)
    filename = _safe(lambda: leaf.get_filename())
    filename = _decoded(filename, charsets) if filename is not None else None
    disposition = _safe(lambda: leaf.get_content_disposition())
    body = _payload(leaf)
    charset = None
    if kind.startswith("text/"):
        body = _to_utf8(body, _safe(lambda: leaf.get_content_charset()))
        charset = "utf-8"
    return Part(
        cid=_content_id(leaf, charsets),
        type=kind,
        is_attachment=filename is not None or disposition == "attachment",
        filename=clean_text(filename) if filename is not None else None,
        charset=charset,
        body=body,
    )


def _forwarded(leaf: Message, charsets: encoded_words.Charsets) -> Part:
    """A forwarded message: an attachment holding the whole inner message, as .eml."""
    inner = leaf.get_payload(0) if leaf.is_multipart() else None
    body = inner.as_bytes(policy=policy.SMTP) if isinstance(inner, Message) else _payload(leaf)
    filename = _decoded(_safe(lambda: leaf.get_filename()) or "forwarded-message.eml", charsets)
    return Part(
        cid=_content_id(leaf, charsets),
        type="message/rfc822",
        is_attachment=True,
        filename=clean_text(filename),
        charset=None,
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


def _content_id(part: Message, charsets: encoded_words.Charsets) -> str | None:
    value = _header(part, "Content-ID", charsets)
    if not value:
        return None
    return clean_text(value).strip().removeprefix("<").removesuffix(">").strip() or None


def _subject(message: Message, charsets: encoded_words.Charsets) -> str | None:
    value = _header(message, "Subject", charsets)
    return clean_text(value) if value is not None else None


def _header(message: Message, name: str, charsets: encoded_words.Charsets) -> str | None:
    value = message.get(name)
    return None if value is None else _decoded(value, charsets)


def _chunk(part: bytes | str, charset: str | None) -> str:
    if isinstance(part, str):
        return part
    if charset in (None, "unknown-8bit"):
        charset = "utf-8"  # SMTPUTF8 mail's headers are UTF-8
    try:
        return part.decode(charset, "replace")
    except LookupError:
        return part.decode("utf-8", "replace")


def _decoded(value: object, charsets: encoded_words.Charsets) -> str:
    """A header's text: RFC 2047 encoded words decoded, raw UTF-8 (SMTPUTF8) read as
    UTF-8; what cannot be decoded stays as it came. The words are decoded in one pass
    (encoded_words), not by email.header's decode_header and make_header: those take
    time quadratic in the number of words on a line, and longer still for unclosed
    ones (issue 28)."""
    if isinstance(value, Header):  # compat32's wrapper for a header with raw 8-bit bytes
        text = "".join(_chunk(part, charset) for part, charset in decode_header(value))
    else:
        text = str(value)
    if "=?" not in text:
        return text
    try:
        return encoded_words.decode(text, charsets)
    except Exception:  # nothing should get here, but caught mail must never fail to parse
        log.warning("could not decode a header; keeping it as written", exc_info=True)
        return text


def clean_text(value: str) -> str:
    """Collapse CR, LF and other control characters so a header value stays on one line."""
    return _CONTROL.sub(" ", value).strip()


def _safe(call):
    try:
        return call()
    except Exception:
        return None
