"""RFC 2047 encoded words in a header, decoded in one pass.

`str(make_header(decode_header(text)))`, the email package's way, takes time
quadratic in the number of encoded words on a line (it pops each piece off the
front of a list and grows the decoded bytes by concatenation: 1 MB of words took
5 s), and its pattern scans from each unclosed word to the end of the line (300 kB
of `=?utf-8?q?a ` took 84 s). `decode` gives what that gives for every header it
decodes, in time linear in the header's length: the same words joined the same way
(whitespace between two words dropped, folded lines joined by a space, a space
between a word and the text beside it). Where the email package gives up on the
whole header (an unknown charset, bytes that are not in their charset, base64 that
does not decode, text outside ASCII), this keeps only the words it cannot decode as
written and decodes the rest. Two more liberties: a word's text never holds a "?"
(RFC 2047 forbids it, and allowing one is what makes the scan quadratic), and an
RFC 2231 language (`=?utf-8*en?q?...?=`) is ignored, as the email package's newer
parser does.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass, field
from email.charset import Charset
from email.errors import CharsetError

# The charset and the text stop at the first "?": each scan from a "=?" ends at the
# next "?", before any other "=?" could start, so the pass is linear.
_ENCODED_WORD = re.compile(r"=\?([^?]*)\?([qQbB])\?([^?]*)\?=")
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
# Charset names looked up per message (per Charsets), at most: a name Python does
# not know costs a fresh search of the codec registry each (0.1 ms, and an entry in
# the encodings package's cache for good), so a message of thousands of made-up
# names would cost seconds. Real mail uses one or two; words in any further ones
# stay as written.
CHARSETS_PER_MESSAGE = 16
# The kind of a chunk kept as written. No charset name holds a "?" (_ENCODED_WORD).
_AS_WRITTEN = "?"


@dataclass
class _Run:
    """Adjacent encoded words in one charset, decoded together: a character may be
    split across two of them. `charset` None: words whose base64 did not decode."""

    charset: str | None
    data: list[bytes] = field(default_factory=list)
    written: list[str] = field(default_factory=list)


class Charsets:
    """The charsets of one message's headers, each looked up once, and no more than
    CHARSETS_PER_MESSAGE of them: name -> (codec, error handling, kind of chunk)."""

    def __init__(self) -> None:
        self._codecs: dict[str, tuple[str, str, str | None] | None] = {}

    def codec(self, charset: str) -> tuple[str, str, str | None] | None:
        """As email.charset.Charset reads `charset`; None if Python has no such codec
        (or it is one name too many)."""
        if charset not in self._codecs:
            if len(self._codecs) >= CHARSETS_PER_MESSAGE:
                return None
            self._codecs[charset] = _codec(charset)
        return self._codecs[charset]


def decode(text: str, charsets: Charsets | None = None) -> str:
    """The header `text` with its encoded words decoded (module docstring); pass one
    Charsets for all the headers of a message."""
    tokens = _tokens(text)
    if not any(isinstance(token, _Run) for token in tokens):
        return text  # as the email package leaves it: its lines unjoined
    if charsets is None:
        charsets = Charsets()
    return _joined([_chunk(token, charsets) for token in tokens])


def _tokens(text: str) -> list[list[str] | _Run]:
    """Plain text (its lines' pieces) and runs of encoded words, in order: what
    email.header.decode_header gives before it decodes charsets."""
    tokens: list[list[str] | _Run] = []
    for line in text.splitlines():
        start = 0
        for match in _ENCODED_WORD.finditer(line):
            gap = line[start : match.start()]
            if start == 0:  # the line's first word
                _add_text(tokens, gap.lstrip())
                if _ends_in_space_after_a_word(tokens):  # the previous line's
                    tokens.pop()
            elif gap and not gap.isspace():  # whitespace between two words goes
                tokens.append([gap])
            _add_word(tokens, match)
            start = match.end()
        tail = line[start:]
        _add_text(tokens, tail.lstrip() if start == 0 else tail)
    return tokens


def _add_text(tokens: list[list[str] | _Run], text: str) -> None:
    """Add text, a line's leading whitespace (a fold's) stripped already."""
    if not text:
        return
    if tokens and isinstance(tokens[-1], list):  # the previous line's text: one space
        tokens[-1].append(text)
    else:
        tokens.append([text])


def _ends_in_space_after_a_word(tokens: list[list[str] | _Run]) -> bool:
    if len(tokens) < 2 or not isinstance(tokens[-2], _Run):
        return False
    last = tokens[-1]
    return isinstance(last, list) and len(last) == 1 and last[0].isspace()


def _add_word(tokens: list[list[str] | _Run], match: re.Match[str]) -> None:
    data = _transfer_decoded(match[2], match[3])
    charset = match[1].lower() if data is not None else None
    last = tokens[-1] if tokens else None
    if not isinstance(last, _Run) or last.charset != charset:
        last = _Run(charset)
        tokens.append(last)
    if data is not None:
        last.data.append(data)
    last.written.append(match[0])


def _transfer_decoded(encoding: str, encoded: str) -> bytes | None:
    """A word's bytes, as email.header decodes them; None if its base64 is broken."""
    if encoding in "qQ":
        raw = encoded.replace("_", " ").encode("raw-unicode-escape")
        return _Q_ESCAPE.sub(lambda m: binascii.unhexlify(m[1]), raw) if b"=" in raw else raw
    try:
        padded = encoded + "==="[: -len(encoded) % 4]
        return binascii.a2b_base64(padded.encode("raw-unicode-escape"))
    except binascii.Error:
        return None


def _chunk(token: list[str] | _Run, charsets: Charsets) -> tuple[str, str | None]:
    """(text, kind): kind None for plain text, else the charset's name, or
    _AS_WRITTEN for words that did not decode."""
    if isinstance(token, list):
        return " ".join(token), None
    codec = charsets.codec(token.charset) if token.charset is not None else None
    if codec is not None:
        name, errors, kind = codec
        try:
            return b"".join(token.data).decode(name, errors), kind
        except (LookupError, ValueError):  # not a text codec; bytes not in the charset
            pass
    return " ".join(token.written), _AS_WRITTEN


def _codec(charset: str) -> tuple[str, str, str | None] | None:
    try:
        known = Charset(charset.partition("*")[0])
        name = known.input_codec or "us-ascii"
        if name == "unknown-8bit":  # compat32 shows its non-ASCII bytes as U+FFFD
            return ("ascii", "replace", "unknown-8bit")
        "".encode(name)  # LookupError for a name Python does not know
    except (CharsetError, LookupError, ValueError):  # ValueError: a NUL in the name
        return None
    return (name, "strict", None if str(known) == "us-ascii" else str(known))


def _joined(chunks: list[tuple[str, str | None]]) -> str:
    """The chunks as email.header.Header's str() joins them: runs of one kind joined
    by a space, and a space between a decoded chunk and plain text unless the text
    has whitespace (or a parenthesis, or a backslash) on that side. Chunks kept as
    written get a space from anything decoded beside them too."""
    merged: list[tuple[list[str], str | None]] = []
    for text, kind in chunks:
        if merged and merged[-1][1] == kind:
            merged[-1][0].append(text)
        else:
            merged.append(([text], kind))
    out: list[str] = []
    last_kind: str | None = None
    last_space = False
    for pieces, kind in merged:
        text = " ".join(pieces)
        if out and _space_between(last_kind, last_space, kind, text):
            out.append(" ")
        last_kind, last_space = kind, bool(text) and _nonctext(text[-1])
        out.append(text)
    return "".join(out)


def _space_between(last_kind: str | None, last_space: bool, kind: str | None, text: str) -> bool:
    if last_kind is not None and kind is not None:
        return _AS_WRITTEN in (last_kind, kind)
    if last_kind is not None:
        return not (text and _nonctext(text[0]))
    return kind is not None and not last_space


def _nonctext(char: str) -> bool:
    return char.isspace() or char in "()\\"
