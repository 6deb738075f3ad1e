"""Log lines that input cannot forge: control characters are shown, not obeyed.

Much of what the sink logs comes from whoever connects: envelope addresses, HELO
names and unknown SMTP verbs (aiosmtpd logs those), request lines (aiohttp, with
-v), errors quoting either. ``MAIL FROM:<"a\\x1b[2J"@b.test>`` cleared the terminal
of `make dev`, and a bare CR or U+2028 started a fake line. So the escaping is done
once, by the formatter every line goes through, rather than at each call: that
covers third-party loggers too, and a log call added later cannot forget it.
"""

from __future__ import annotations

import logging
import time

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A log line quoting a whole message would be a flood of its own.
MESSAGE_MAX_CHARS = 2000


def printable(text: str, keep: str = "") -> str:
    """``text`` with every character that is not printable (C0 and C1 controls, CR,
    LF, DEL, U+2028/2029, bidi and other format characters) written as its Python
    escape (``\\x1b``, ``\\r``, ``\\u2028``), except those in ``keep``."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else _escape(c) for c in text)


def _escape(char: str) -> str:
    return repr(char)[1:-1]


class EscapingFormatter(logging.Formatter):
    """Escapes the message of every record (and all but the line breaks of a
    traceback, whose lines are the formatter's own)."""

    def __init__(self, fmt: str = FORMAT) -> None:
        super().__init__(fmt)

    def formatMessage(self, record: logging.LogRecord) -> str:
        message = record.message
        if len(message) > MESSAGE_MAX_CHARS:
            message = f"{message[:MESSAGE_MAX_CHARS]}… ({len(message)} characters)"
        return super().formatMessage(
            logging.makeLogRecord({**record.__dict__, "message": printable(message)})
        )

    def formatException(self, ei) -> str:
        return printable(super().formatException(ei), keep="\n")


def configure(verbose: bool) -> None:
    """Every line to stderr through the escaping formatter."""
    handler = logging.StreamHandler()
    handler.setFormatter(EscapingFormatter())
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])


class BurstLog:
    """Logs the first of a run of like events, then at most one line per ``every``
    seconds saying how many it left out: a flood of connections (or of accept
    errors once file handles run out) must not become a flood of log."""

    def __init__(self, logger: logging.Logger, every: float = 60.0) -> None:
        self._logger, self._every = logger, every
        self._last = -every
        self._left_out = 0

    def __call__(self, level: int, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self._every:
            self._left_out += 1
            return
        if self._left_out:
            message += f" ({self._left_out} more like it since the last such line)"
        self._last, self._left_out = now, 0
        self._logger.log(level, message, *args)
