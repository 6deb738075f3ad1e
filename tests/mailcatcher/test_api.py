"""Every HTTP route, checked against MailCatcher's shapes and status codes."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
import requests

from tests.mailcatcher.helpers import eml, pypi_client, send, simple_message

CREATED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")


def get(server, path: str, **kwargs) -> requests.Response:
    return requests.get(f"{server.url}{path}", timeout=10, **kwargs)


def delete(server, path: str) -> requests.Response:
    return requests.delete(f"{server.url}{path}", timeout=10)


@pytest.fixture
def gif_message(mailcatcher) -> dict:
    send(
        mailcatcher.smtp_port,
        eml("inline_gif.eml"),
        "noreply@work-it.test",
        ["learner@example.com", "cc@example.com"],
    )
    [message] = get(mailcatcher, "/messages").json()
    return message


def test_list_matches_mailcatcher(mailcatcher, gif_message):
    response = get(mailcatcher, "/messages")

    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    [message] = response.json()
    assert list(message) == ["id", "sender", "recipients", "subject", "size", "created_at"]
    assert message["sender"] == "<noreply@work-it.test>"
    assert message["recipients"] == ["<learner@example.com>", "<cc@example.com>"]
    assert message["subject"] == "Your GIF is ready"
    assert message["size"] == str(len(eml("inline_gif.eml")))
    assert CREATED_AT.match(message["created_at"])


def test_list_is_oldest_first_and_optionally_searchable(mailcatcher):
    for subject in ("first", "second", "third"):
        send(mailcatcher.smtp_port, simple_message(subject), recipients=[f"{subject}@example.com"])

    assert [m["subject"] for m in get(mailcatcher, "/messages").json()] == [
        "first",
        "second",
        "third",
    ]
    assert [
        m["subject"] for m in get(mailcatcher, "/messages", params={"q": "SECOND@"}).json()
    ] == ["second"]
    assert get(mailcatcher, "/messages", params={"q": "100%_"}).json() == []


def test_message_json(mailcatcher, gif_message):
    message_id = gif_message["id"]
    details = get(mailcatcher, f"/messages/{message_id}.json").json()

    assert details == {
        **gif_message,
        "type": "multipart/mixed",
        "formats": ["source", "html", "plain"],
        "attachments": [
            {
                "cid": "work-it-gif@work-it.test",
                "type": "image/gif",
                "filename": "party.gif",
                "size": 43,
                "href": f"/messages/{message_id}/parts/work-it-gif%40work-it.test",
            }
        ],
    }


def test_html_points_cid_images_at_the_message_parts(mailcatcher, gif_message):
    response = get(mailcatcher, f"/messages/{gif_message['id']}.html")

    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert f'src="{gif_message["id"]}/parts/work-it-gif@work-it.test"' in response.text
    assert "cid:" not in response.text


def test_plain_source_and_eml(mailcatcher, gif_message):
    message_id = gif_message["id"]

    plain = get(mailcatcher, f"/messages/{message_id}.plain")
    assert plain.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert plain.text == "Here is your GIF. Have a nice day."

    source = get(mailcatcher, f"/messages/{message_id}.source")
    assert source.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert source.content == eml("inline_gif.eml")

    download = get(mailcatcher, f"/messages/{message_id}.eml")
    assert download.headers["Content-Type"] == "message/rfc822"
    assert download.content == eml("inline_gif.eml")


def test_part_by_cid(mailcatcher, gif_message):
    part = get(mailcatcher, f"/messages/{gif_message['id']}/parts/work-it-gif@work-it.test")

    assert part.status_code == 200
    assert part.headers["Content-Type"] == "image/gif"
    assert part.headers["Content-Disposition"].startswith('attachment; filename="party.gif"')
    assert part.content.startswith(b"GIF89a")


def test_attachment_without_content_id_gets_a_working_href(mailcatcher):
    message = simple_message("with attachment")
    message.add_attachment(
        b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="report.pdf"
    )
    send(mailcatcher.smtp_port, message)
    [caught] = get(mailcatcher, "/messages").json()

    [attachment] = get(mailcatcher, f"/messages/{caught['id']}.json").json()["attachments"]
    assert attachment["cid"]  # generated, as MailCatcher's mail gem does
    assert attachment["href"] == f"/messages/{caught['id']}/parts/{quote(attachment['cid'])}"
    download = get(mailcatcher, attachment["href"])
    assert download.content == b"%PDF-1.4 fake"
    assert download.headers["Content-Type"] == "application/pdf"
    # MailCatcher's clients build the link themselves from the cid, unescaped
    built = get(mailcatcher, f"/messages/{caught['id']}/parts/{attachment['cid']}")
    assert built.content == b"%PDF-1.4 fake"


@pytest.mark.parametrize(
    "path",
    [
        "/messages/999.json",
        "/messages/999.html",
        "/messages/999.plain",
        "/messages/999.source",
        "/messages/999.eml",
        "/messages/999/parts/x@y",
        "/messages/abc.json",
        "/messages/1.pdf",
    ],
)
def test_missing_message_is_404(mailcatcher, path):
    assert get(mailcatcher, path).status_code == 404


def test_missing_format_or_part_is_404(mailcatcher):
    send(mailcatcher.smtp_port, simple_message("plain only"))
    [caught] = get(mailcatcher, "/messages").json()

    assert get(mailcatcher, f"/messages/{caught['id']}.json").json()["formats"] == [
        "source",
        "plain",
    ]
    assert get(mailcatcher, f"/messages/{caught['id']}.html").status_code == 404
    assert get(mailcatcher, f"/messages/{caught['id']}/parts/nothing@here").status_code == 404


def test_delete_one_then_all(mailcatcher):
    for subject in ("keep", "drop", "also"):
        send(mailcatcher.smtp_port, simple_message(subject))
    ids = {m["subject"]: m["id"] for m in get(mailcatcher, "/messages").json()}

    assert delete(mailcatcher, f"/messages/{ids['drop']}").status_code == 204
    assert delete(mailcatcher, f"/messages/{ids['drop']}").status_code == 404
    assert get(mailcatcher, f"/messages/{ids['drop']}.json").status_code == 404
    assert [m["subject"] for m in get(mailcatcher, "/messages").json()] == ["keep", "also"]

    assert delete(mailcatcher, "/messages").status_code == 204
    assert get(mailcatcher, "/messages").json() == []
    assert get(mailcatcher, f"/messages/{ids['keep']}/parts/x").status_code == 404


def test_ids_are_not_reused_after_clearing(mailcatcher):
    send(mailcatcher.smtp_port, simple_message("one"))
    [first] = get(mailcatcher, "/messages").json()
    delete(mailcatcher, "/messages")
    send(mailcatcher.smtp_port, simple_message("two"))
    [second] = get(mailcatcher, "/messages").json()

    assert second["id"] > first["id"]


def test_inbox_page_and_assets(mailcatcher):
    page = get(mailcatcher, "/")
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    script_src = f"script-src {mailcatcher.url}/assets/inbox.js;"
    assert script_src in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    for asset in re.findall(r'(?:src|href)="(/assets/[^"]+)"', page.text):
        assert get(mailcatcher, asset).status_code == 200


def test_pypi_client_reads_our_api(mailcatcher, gif_message):
    client = pypi_client().Mailcatcher("127.0.0.1", mailcatcher.http_port)

    [message] = list(client.messages())
    assert message.message_id == gif_message["id"]
    assert message.sender == "<noreply@work-it.test>"
    assert message.recipients == ["<learner@example.com>", "<cc@example.com>"]
    assert message.subject == "Your GIF is ready"
    assert message.size == str(len(eml("inline_gif.eml")))
    assert message.created_at == gif_message["created_at"]
    assert client.get_message_by_id(message.message_id) == "Here is your GIF. Have a nice day."


def test_a_forwarded_message_is_an_attachment_not_the_outer_body(mailcatcher):
    inner = simple_message("The original", "original text")
    inner.add_alternative("<p id=inner>original html</p>", subtype="html")
    outer = simple_message("Fwd: The original", "See below.")
    outer.add_attachment(inner)  # a message/rfc822 part
    send(mailcatcher.smtp_port, outer)
    [caught] = get(mailcatcher, "/messages").json()

    shown = get(mailcatcher, f"/messages/{caught['id']}.json").json()
    assert shown["formats"] == ["source", "plain"]  # no HTML of its own
    assert get(mailcatcher, f"/messages/{caught['id']}.plain").text.strip() == "See below."
    [attachment] = shown["attachments"]
    assert attachment["type"] == "message/rfc822"
    forwarded = get(mailcatcher, attachment["href"]).content
    assert b"Subject: The original" in forwarded and b"original html" in forwarded


# 5,000 digits: more than int() reads from text (4,300), which raised a 500.
@pytest.mark.parametrize("message_id", [2**63, 2**63 + 1, 10**30, "9" * 5000])
def test_ids_too_big_for_sqlite_are_404(mailcatcher, message_id):
    for suffix in (".json", ".html", ".plain", ".source", ".eml", "/parts/x", "/attachments/0"):
        assert get(mailcatcher, f"/messages/{message_id}{suffix}").status_code == 404, suffix
    deleted = requests.delete(f"{mailcatcher.url}/messages/{message_id}", timeout=10)
    assert deleted.status_code == 404
    released = requests.post(f"{mailcatcher.url}/messages/{message_id}/release", timeout=10)
    assert released.status_code in (404, 503)  # 503: release is off on this sink


@pytest.mark.parametrize("position", [2**63, 10**30, "9" * 5000])
def test_attachment_positions_too_big_for_sqlite_are_404(mailcatcher, position):
    send(mailcatcher.smtp_port, simple_message())
    [caught] = get(mailcatcher, "/messages").json()
    assert get(mailcatcher, f"/messages/{caught['id']}/attachments/{position}").status_code == 404


def test_an_xhtml_body_is_served_as_html(mailcatcher):
    raw = (
        b"From: a@example.com\r\nTo: b@example.com\r\nSubject: XHTML\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: application/xhtml+xml; charset=utf-8\r\n\r\n"
        b'<html xmlns="http://www.w3.org/1999/xhtml"><body><p>strict</p></body></html>\r\n'
    )
    send(mailcatcher.smtp_port, raw)
    [caught] = get(mailcatcher, "/messages").json()

    html = get(mailcatcher, f"/messages/{caught['id']}.html")
    assert html.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<p>strict</p>" in html.text


def test_what_shows_an_address_is_never_cached(mailcatcher):
    send(mailcatcher.smtp_port, simple_message("Private"), "ann@example.com", ["bob@example.com"])
    [message] = requests.get(f"{mailcatcher.url}/messages", timeout=10).json()
    for path in (
        "/",
        "/messages",
        f"/messages/{message['id']}.json",
        f"/messages/{message['id']}.plain",
    ):
        response = requests.get(f"{mailcatcher.url}{path}", timeout=10)
        assert response.headers["Cache-Control"] == "no-store", path
    script = requests.get(f"{mailcatcher.url}/assets/inbox.js", timeout=10)
    assert script.status_code == 200 and "no-store" not in script.headers.get("Cache-Control", "")
