"""How long the server took: a footer on every page, a Server-Timing header on every response.

The lesson is that a request which hands its slow work to a job answers in
milliseconds. These numbers let a learner see it (and see the five seconds when
WORKIT_DELIVERY=now) without opening the browser's developer tools; the
``Server-Timing`` header puts the same number in those tools' timing panel.
"""

import time
from datetime import datetime

from flask import Flask, g
from werkzeug.wrappers import Response

HEADER = "Server-Timing"


def init_app(app: Flask) -> None:
    """Register the hooks. Call it first, so that the clock starts before other hooks run."""
    app.before_request(_start_clock)
    app.after_request(_add_header)
    app.add_template_global(elapsed_ms, "server_time_ms")
    app.add_template_filter(format_ms, "duration")


def _start_clock() -> None:
    g.request_started = time.perf_counter()


def elapsed_ms() -> float | None:
    """Milliseconds since this request started; None outside a request (an email's template)."""
    started = g.get("request_started")
    return None if started is None else (time.perf_counter() - started) * 1000


def _add_header(response: Response) -> Response:
    ms = elapsed_ms()
    if ms is not None:
        response.headers[HEADER] = f"app;dur={ms:.1f}"
    return response


def format_ms(ms: float) -> str:
    """'4 ms' under a second, '5.02 s' from one: the scale a person reads at a glance."""
    if abs(ms) < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.2f} s"


def offset(start: str, stamp: str) -> str:
    """'+4 ms': how long after ``start`` the ISO timestamp ``stamp`` came."""
    ms = (datetime.fromisoformat(stamp) - datetime.fromisoformat(start)).total_seconds() * 1000
    return ("-" if ms < 0 else "+") + format_ms(abs(ms))
