"""In-process publish/subscribe for inbox changes (MailCatcher's `Bus`).

Events are MailCatcher's websocket frames, serialised once at publish time and
queued per subscriber. A subscriber that falls too far behind is cut off rather
than allowed to grow memory without bound; its client reconnects and re-reads
the list, which is what MailCatcher's own page does after a dropped socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

log = logging.getLogger(__name__)

OVERFLOW = None  # what a subscriber receives, once, after it fell too far behind


class Subscription:
    def __init__(self, bus: Bus, backlog: int) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=backlog)

    async def get(self) -> str | None:
        """The next frame as JSON text, or OVERFLOW if frames were dropped."""
        return await self._queue.get()

    def deliver(self, frame: str) -> bool:
        try:
            self._queue.put_nowait(frame)
            return True
        except asyncio.QueueFull:
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(OVERFLOW)
            return False

    def close(self) -> None:
        self._bus.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Bus:
    def __init__(self, backlog: int = 1000) -> None:
        self._backlog = backlog
        self._subscriptions: set[Subscription] = set()

    def subscribe(self) -> Subscription:
        subscription = Subscription(self, self._backlog)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    def publish(self, event: dict[str, Any]) -> None:
        frame = json.dumps(event)
        for subscription in list(self._subscriptions):
            if not subscription.deliver(frame):
                log.warning("a websocket client fell behind; dropping it")
                self.unsubscribe(subscription)
