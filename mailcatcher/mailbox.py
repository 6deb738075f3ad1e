"""Every change to the inbox goes through here, so each one is stored and announced.

SMTP adds, the web API deletes and clears, retention trims; each publishes the
matching MailCatcher websocket frame (`add`, `remove`, `clear`).
"""

from __future__ import annotations

import logging

from mailcatcher.events import Bus
from mailcatcher.mime import ParsedMessage, parse
from mailcatcher.store import Row, Store

# sender, recipients, source, and its parse if done already
Envelope = tuple[str | None, list[str], bytes, ParsedMessage | None]

log = logging.getLogger(__name__)


class Mailbox:
    def __init__(self, store: Store, bus: Bus, messages_limit: int | None = None) -> None:
        self.store = store
        self.bus = bus
        self.messages_limit = messages_limit

    def receive(
        self,
        sender: str | None,
        recipients: list[str],
        source: bytes,
        parsed: ParsedMessage | None = None,
    ) -> Row:
        """Keep one message from an SMTP envelope; addresses get MailCatcher's brackets."""
        [summary] = self.receive_all([(sender, recipients, source, parsed)])
        return summary

    def receive_all(self, envelopes: list[Envelope]) -> list[Row]:
        """Keep several at once, in one transaction (a burst of mail, one commit)."""
        rows = [
            (
                f"<{sender or ''}>",
                [f"<{address}>" for address in recipients],
                source,
                parsed if parsed is not None else parse(source),
            )
            for sender, recipients, source, parsed in envelopes
        ]
        summaries = self.store.add_all(rows)
        for summary, (*_, parsed) in zip(summaries, rows, strict=True):
            # MailCatcher's frame carries its message row, content type included.
            self.bus.publish({"type": "add", "message": {**summary, "type": parsed.type}})
        if len(summaries) == 1:  # MailCatcher's line; a burst gets one line, not one each
            [one] = summaries
            log.info("==> SMTP: Received message from %s (%s bytes)", one["sender"], one["size"])
        elif summaries:
            log.info("==> SMTP: Received %d messages", len(summaries))
        self._apply_limit()
        return summaries

    def delete(self, message_id: int) -> bool:
        if not self.store.delete(message_id):
            return False
        self.bus.publish({"type": "remove", "id": message_id})
        return True

    def clear(self) -> None:
        self.store.clear()
        self.bus.publish({"type": "clear"})

    def _apply_limit(self) -> None:
        if self.messages_limit is None:
            return
        for message_id in self.store.ids_beyond(self.messages_limit):
            self.delete(message_id)
