"""Caught messages in SQLite: in memory by default (like MailCatcher), or in a file to
survive restarts.

The store is used from the event loop's thread only, so it needs no locks. Rows are
shaped the way MailCatcher's API returns them (addresses in angle brackets, `size`
as a string, `created_at` as ISO 8601 in UTC) so the web layer only serialises them.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailcatcher import search
from mailcatcher.mime import HTML_TYPES, ParsedMessage

SCHEMA = """
CREATE TABLE IF NOT EXISTS message (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sender TEXT,
    recipients TEXT,
    subject TEXT,
    source BLOB,
    size TEXT,
    type TEXT,
    created_at TEXT,
    from_header TEXT,
    to_header TEXT,
    tags TEXT,
    has_attachment INTEGER,
    search_text TEXT
);
CREATE TABLE IF NOT EXISTS message_part (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id INTEGER NOT NULL REFERENCES message (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    cid TEXT,
    type TEXT,
    is_attachment INTEGER,
    filename TEXT,
    charset TEXT,
    body BLOB,
    size INTEGER
);
CREATE INDEX IF NOT EXISTS message_part_message_id ON message_part (message_id);
"""
# After the columns it indexes exist (a file from an older version gains them first):
# counting a search's matches, and before:/after:, read this instead of whole rows.
INDEXES = "CREATE INDEX IF NOT EXISTS message_created_at ON message (created_at);"

SUMMARY = "id, sender, recipients, subject, size, created_at"
# Added after the first release: a file kept from then gets them on open.
SEARCH_COLUMNS = {
    "from_header": "TEXT",
    "to_header": "TEXT",
    "tags": "TEXT",
    "has_attachment": "INTEGER",
    "search_text": "TEXT",
}
# A plus-address's tag: ada+signup@example.com is tagged "signup".
PLUS_TAG = re.compile(r"^<?[^@+>]+\+([^@>]+)@")
PART = "position, cid, type, is_attachment, filename, charset, body, size"

Row = dict[str, Any]


class Store:
    def __init__(self, path: str | Path = ":memory:") -> None:
        self._db = sqlite3.connect(str(path))
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA foreign_keys = ON")
        if str(path) != ":memory:":
            # A dev tool's mailbox: losing the last second of mail on power loss is fine.
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.executescript(SCHEMA)
        self._add_missing_columns()
        self._db.executescript(INDEXES)

    def close(self) -> None:
        self._db.close()

    def _add_missing_columns(self) -> None:
        present = {row["name"] for row in self._db.execute("PRAGMA table_info(message)")}
        with self._db:
            for name, kind in SEARCH_COLUMNS.items():
                if name not in present:
                    self._db.execute(f"ALTER TABLE message ADD COLUMN {name} {kind}")

    def add(self, sender: str, recipients: list[str], source: bytes, parsed: ParsedMessage) -> Row:
        """Store one message with its parts; returns its summary as `GET /messages` lists it."""
        with self._db:
            return self._insert(sender, recipients, source, parsed)

    def add_all(self, messages: list[tuple[str, list[str], bytes, ParsedMessage]]) -> list[Row]:
        """Store several in one transaction: one commit for a burst of mail."""
        with self._db:
            return [self._insert(*message) for message in messages]

    def _insert(self, sender: str, recipients: list[str], source: bytes, parsed: ParsedMessage):
        created_at = datetime.now(UTC).replace(microsecond=0).isoformat()
        found_tags = tags(parsed, recipients)
        cursor = self._db.execute(
            "INSERT INTO message (sender, recipients, subject, source, size, type, created_at,"
            " from_header, to_header, tags, has_attachment, search_text)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                sender,
                json.dumps(recipients),
                parsed.subject,
                source,
                str(len(source)),
                parsed.type,
                created_at,
                parsed.from_header,
                parsed.to_header,
                json.dumps(found_tags),
                int(any(part.is_attachment for part in parsed.parts)),
                " ".join(
                    [
                        sender,
                        *recipients,
                        parsed.subject or "",
                        parsed.from_header,
                        parsed.to_header,
                        *found_tags,
                        parsed.search_text,
                    ]
                ),  # fmt: skip
            ),
        )
        message_id = cursor.lastrowid
        self._db.executemany(
            f"INSERT INTO message_part (message_id, {PART}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    message_id,
                    position,
                    p.cid,
                    p.type,
                    int(p.is_attachment),
                    p.filename,
                    p.charset,
                    p.body,
                    len(p.body),
                )
                for position, p in enumerate(parsed.parts)
            ],
        )
        return {
            "id": message_id,
            "sender": sender,
            "recipients": recipients,
            "subject": parsed.subject,
            "size": str(len(source)),
            "created_at": created_at,
        }

    def messages(self, query: str | None = None) -> list[Row]:
        """Oldest first, as MailCatcher lists them; `query` in mailcatcher/search.py's syntax."""
        where, args = search.condition(query)
        sql = f"SELECT {SUMMARY} FROM message WHERE {where} ORDER BY id"
        return [_summary(row) for row in self._db.execute(sql, args)]

    def page(
        self, query: str | None, limit: int, offset: int = 0, newest_first: bool = True
    ) -> tuple[list[Row], int]:
        """One page of the messages ``query`` finds, with their tags, and how many it finds."""
        where, args = search.condition(query)
        order = "DESC" if newest_first else "ASC"
        rows = self._db.execute(
            f"SELECT {SUMMARY}, tags FROM message WHERE {where} ORDER BY id {order}"
            " LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        total = self._db.execute(f"SELECT count(*) FROM message WHERE {where}", args).fetchone()[0]
        return [_summary(row) for row in rows], total

    def message(self, message_id: int) -> Row | None:
        row = self._db.execute(
            "SELECT id, sender, recipients, subject, size, type, created_at FROM message"
            " WHERE id = ?",
            (message_id,),
        ).fetchone()
        return _summary(row) if row else None

    def source(self, message_id: int) -> bytes | None:
        row = self._db.execute("SELECT source FROM message WHERE id = ?", (message_id,)).fetchone()
        return bytes(row["source"]) if row else None

    def formats(self, message_id: int) -> list[str]:
        """MailCatcher's `formats`: always "source", then "html" and "plain" if present."""
        types = {part["type"] for part in self._inline_parts(message_id)}
        return [
            "source",
            *(["html"] if types.intersection(HTML_TYPES) else []),
            *(["plain"] if "text/plain" in types else []),
        ]

    def attachments(self, message_id: int) -> list[Row]:
        rows = self._db.execute(
            "SELECT position, cid, type, filename, size FROM message_part"
            " WHERE message_id = ? AND is_attachment = 1 ORDER BY filename, position",
            (message_id,),
        )
        return [dict(row) for row in rows]

    def body_part(self, message_id: int, types: Iterable[str]) -> Row | None:
        """The first inline (non-attachment) part of the first type in `types` that exists."""
        parts = self._inline_parts(message_id)
        for kind in types:
            for part in parts:
                if part["type"] == kind:
                    return part
        return None

    def part_by_cid(self, message_id: int, cid: str) -> Row | None:
        return self._part("cid = ?", message_id, cid)

    def part_at(self, message_id: int, position: int) -> Row | None:
        return self._part("position = ?", message_id, position)

    def delete(self, message_id: int) -> bool:
        with self._db:
            return self._db.execute("DELETE FROM message WHERE id = ?", (message_id,)).rowcount > 0

    def clear(self) -> None:
        with self._db:
            self._db.execute("DELETE FROM message")

    def ids_beyond(self, keep: int) -> list[int]:
        """Ids of all but the newest `keep` messages, oldest first."""
        rows = self._db.execute(
            "SELECT id FROM message ORDER BY id DESC LIMIT -1 OFFSET ?", (keep,)
        ).fetchall()
        return sorted(row["id"] for row in rows)

    def _inline_parts(self, message_id: int) -> list[Row]:
        rows = self._db.execute(
            f"SELECT {PART} FROM message_part WHERE message_id = ? AND is_attachment = 0"
            " ORDER BY position",
            (message_id,),
        )
        return [dict(row) for row in rows]

    def _part(self, where: str, message_id: int, value: object) -> Row | None:
        row = self._db.execute(
            f"SELECT {PART} FROM message_part WHERE message_id = ? AND {where}"
            " ORDER BY position LIMIT 1",
            (message_id, value),
        ).fetchone()
        return dict(row) if row else None


def _summary(row: sqlite3.Row) -> Row:
    summary = dict(row)
    summary["recipients"] = json.loads(summary["recipients"])
    if "tags" in summary:
        summary["tags"] = json.loads(summary["tags"] or "[]")
    return summary


def tags(parsed: ParsedMessage, recipients: list[str]) -> list[str]:
    """X-Tags, then the tags of plus-addressed recipients, each once, in lower case."""
    plus = [m[1].lower() for m in map(PLUS_TAG.match, recipients) if m]
    return list(dict.fromkeys([*parsed.tags, *plus]))
