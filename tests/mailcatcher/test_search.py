"""The inbox's search (mailcatcher/search.py) over a real store, and paging over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
import requests

from mailcatcher.mime import parse
from mailcatcher.search import BadQuery
from mailcatcher.store import Store
from tests.mailcatcher.helpers import send, simple_message


def message(subject: str, body: str = "", html: str = "", **headers: str) -> EmailMessage:
    email = simple_message(subject, body or "text", **headers)
    if html:
        email.add_alternative(html, subtype="html")
    return email


@pytest.fixture
def store():
    store = Store()
    mails = [
        ("<ada@example.com>", ["<bob@example.com>"], message("Invoice 42", "Pay by Friday")),
        (
            "<noreply@shop.test>",
            ["<ada+orders@example.com>"],
            message("Your order", html="<p>Tracking <b>ZX81</b></p>", Cc="carol@example.com"),
        ),
        ("<bob@example.com>", ["<dan@example.com>"], message("Lunch?", X_Tags="social, food")),
    ]
    with_file = message("Report attached", "see file")
    with_file.add_attachment(b"data", maintype="application", subtype="pdf", filename="r.pdf")
    mails.append(("<eve@example.com>", ["<bob@example.com>"], with_file))
    for sender, recipients, email in mails:
        source = email.as_bytes()
        store.add(sender, recipients, source, parse(source))
    yield store
    store.close()


def subjects(store: Store, query: str) -> list[str]:
    return [row["subject"] for row in store.messages(query)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["Invoice 42", "Your order", "Lunch?", "Report attached"]),
        ("friday", ["Invoice 42"]),  # the plain body
        ("zx81", ["Your order"]),  # the HTML body, as text
        ("carol", ["Your order"]),  # the Cc header
        ("from:ada", ["Invoice 42"]),
        ("to:bob", ["Invoice 42", "Report attached"]),
        ("subject:order", ["Your order"]),
        ("has:attachment", ["Report attached"]),
        ("tag:food", ["Lunch?"]),  # X-Tags
        ("tag:orders", ["Your order"]),  # a plus-address
        ("tag:foo", []),  # whole tags only
        ("-from:ada -tag:social", ["Your order", "Report attached"]),
        ('"order"', ["Your order"]),
        ("bob -lunch", ["Invoice 42", "Report attached"]),
        ("100%_", []),  # LIKE's wildcards are text here
    ],
)
def test_the_search_syntax(store, query, expected):
    assert subjects(store, query) == expected


def test_before_and_after_are_days_in_utc(store):
    today = datetime.now(UTC).date()
    assert len(subjects(store, f"after:{today - timedelta(days=1)}")) == 4
    assert subjects(store, f"after:{today}") == []
    assert subjects(store, f"before:{today}") == []
    assert len(subjects(store, f"before:{today + timedelta(days=1)}")) == 4


def test_a_date_that_is_not_one_is_a_bad_query(store):
    with pytest.raises(BadQuery, match="not a date"):
        store.messages("before:someday")


def test_a_page_is_newest_first_with_the_total_and_tags(store):
    rows, total = store.page("", limit=2, offset=1)
    assert total == 4
    assert [row["subject"] for row in rows] == ["Lunch?", "Your order"]
    assert rows[0]["tags"] == ["social", "food"]


# -- over HTTP --------------------------------------------------------------------------


def get(server, path: str, **params) -> requests.Response:
    return requests.get(f"{server.url}{path}", params=params, timeout=10)


def test_paging_and_searching_over_http(mailcatcher):
    for n in range(5):
        send(mailcatcher.smtp_port, simple_message(f"Note {n}", f"body {n}", X_Tags="notes"))
    send(mailcatcher.smtp_port, simple_message("Other", "nothing"), "x@example.com", ["a+b@c.de"])

    page = get(mailcatcher, "/messages", limit=2, offset=1, q="tag:notes")
    assert page.headers["X-Total-Count"] == "5"
    assert [m["subject"] for m in page.json()] == ["Note 3", "Note 2"]
    assert page.json()[0]["tags"] == ["notes"]
    oldest = get(mailcatcher, "/messages", limit=1, order="oldest").json()
    assert oldest[0]["subject"] == "Note 0"
    # MailCatcher's own list: everything, oldest first, its fields only
    classic = get(mailcatcher, "/messages").json()
    assert [m["subject"] for m in classic][0] == "Note 0" and len(classic) == 6
    assert "tags" not in classic[0]
    assert [m["subject"] for m in get(mailcatcher, "/messages", q="body 4").json()] == ["Note 4"]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "x"},
        {"limit": "-1"},
        {"limit": "100000"},
        {"limit": "5", "q": "after:soon"},
        # Past SQLite's 64-bit integers, and past what int() reads: both were 500s.
        {"limit": "5", "offset": "99999999999999999999999"},
        {"limit": "5", "offset": str(2**63)},
        {"limit": "5", "offset": "9" * 5000},
        {"limit": "9" * 5000},
    ],
)
def test_bad_paging_or_query_is_400(mailcatcher, params):
    answer = get(mailcatcher, "/messages", **params)
    assert answer.status_code == 400
    assert answer.json()["error"]
