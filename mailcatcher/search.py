"""The inbox's search: a subset of Mailpit's syntax, compiled to one SQL condition.

    invoice                   anywhere: envelope, From/To/Cc, subject, bodies, tags
    "exact phrase"            the same, as one term
    from:ada  to:bob  subject:welcome  tag:signup
    has:attachment
    before:2026-11-26  after:2026-11-20    (days in UTC; a full ISO time works too)
    -term  -from:noreply      leave out what matches

Terms are ANDed. Matching is case-insensitive and by substring, as MailCatcher's
`?q=` was; user text only ever reaches SQL as a bound LIKE parameter.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

TERM = re.compile(
    r"(?P<negate>-)?(?:(?P<field>from|to|subject|tag|has|before|after):)?"
    r'(?:"(?P<quoted>[^"]*)"?|(?P<word>\S+))',
    re.IGNORECASE,
)
LIKE = "LIKE ? ESCAPE '\\'"
# search_text holds all of a message's searchable text, joined once when it arrived;
# a message kept by an older version has only its envelope and subject to match.
EVERYWHERE = (
    "coalesce(search_text, coalesce(sender, '') || ' ' || coalesce(recipients, '')"
    " || ' ' || coalesce(subject, ''))"
)
FIELDS = {
    "from": "coalesce(sender, '') || ' ' || coalesce(from_header, '')",
    "to": "coalesce(recipients, '') || ' ' || coalesce(to_header, '')",
    "subject": "coalesce(subject, '')",
}


class BadQuery(ValueError):
    """A term the search cannot use (a date that is not one); the message says which."""


def condition(query: str | None) -> tuple[str, list[str]]:
    """A WHERE condition over the message table for ``query``, with its parameters."""
    clauses, args = [], []
    for term in TERM.finditer(query or ""):
        value = term["quoted"] if term["quoted"] is not None else term["word"]
        if not value:
            continue
        clause, clause_args = _clause((term["field"] or "").lower(), value)
        clauses.append(f"NOT ({clause})" if term["negate"] else clause)
        args += clause_args
    return " AND ".join(clauses) or "1", args


def _clause(field: str, value: str) -> tuple[str, list[str]]:
    if field in FIELDS:
        return f"({FIELDS[field]}) {LIKE}", [_contains(value)]
    if field == "tag":  # tags are kept as a JSON list: match one whole tag
        return f"coalesce(tags, '') {LIKE}", [f'%"{escape_like(value.lower())}"%']
    if field == "has":
        return ("has_attachment = 1", []) if value.lower().startswith("attachment") else ("0", [])
    if field == "before":
        return "created_at < ?", [_moment(value, start_of_next_day=False)]
    if field == "after":
        return "created_at >= ?", [_moment(value, start_of_next_day=True)]
    return f"({EVERYWHERE}) {LIKE}", [_contains(value)]


def _moment(value: str, start_of_next_day: bool) -> str:
    """``created_at`` is ISO 8601 in UTC, so comparing strings compares times. A bare day
    means its start (before:) or the start of the next one (after:)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadQuery(f"{value!r} is not a date (use 2026-11-26)") from exc
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    if len(value) == 10 and start_of_next_day:
        moment += timedelta(days=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _contains(value: str) -> str:
    return f"%{escape_like(value)}%"


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
