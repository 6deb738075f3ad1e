"""Waiting for a condition: poll it, never sleep a fixed time and hope."""

import time
from collections.abc import Callable


class TimedOut(AssertionError, TimeoutError):
    """An AssertionError, so a test that waited in vain fails rather than errors; a
    TimeoutError, so a benchmark that waited in vain says what happened."""


def wait_for(
    condition: Callable[[], object],
    timeout: float = 10.0,
    what: str = "condition",
    interval: float = 0.02,
):
    """Poll `condition` until it returns something truthy (and return that)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimedOut(f"timed out waiting for {what}")
        time.sleep(interval)
