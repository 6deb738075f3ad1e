"""Hostile mail, seen from the HTTP side: nothing it contains may become script,
a header or a path on our side. (The browser side is in test_inbox_browser.py.)"""

from __future__ import annotations

import pytest
import requests

from tests.mailcatcher.helpers import eml, send, simple_message


def caught(server, fixture: str) -> dict:
    send(server.smtp_port, eml(fixture))
    [message] = requests.get(f"{server.url}/messages", timeout=10).json()
    return requests.get(f"{server.url}/messages/{message['id']}.json", timeout=10).json()


def get(server, path: str) -> requests.Response:
    return requests.get(f"{server.url}{path}", timeout=10)


def assert_no_script_allowed(response: requests.Response) -> None:
    policy = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().partition(" ")[::2] for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert "script-src" not in directives
    assert "sandbox" in directives  # no same-origin access even when opened directly
    # Links may open in a new tab; never scripts, forms or same-origin access.
    assert set(directives["sandbox"].split()) <= {"allow-popups", "allow-popups-to-escape-sandbox"}
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_html_body_is_served_under_a_script_free_sandbox(mailcatcher):
    message = caught(mailcatcher, "hostile_script.eml")

    html = get(mailcatcher, f"/messages/{message['id']}.html")
    assert html.status_code == 200
    assert_no_script_allowed(html)
    assert "base-uri 'none'" in html.headers["Content-Security-Policy"]
    assert "form-action 'none'" in html.headers["Content-Security-Policy"]
    # The same body reached through its Content-ID is locked down the same way.
    assert_no_script_allowed(
        get(mailcatcher, f"/messages/{message['id']}/parts/hostile-html@example.com")
    )


def test_html_subject_is_data_not_markup(mailcatcher):
    message = caught(mailcatcher, "hostile_script.eml")

    assert message["subject"] == "<img src=x onerror=\"document.body.dataset.pwned='subject'\">"


def test_crlf_in_headers_stays_on_one_line(mailcatcher):
    message = caught(mailcatcher, "header_crlf.eml")

    assert message["subject"] == "Hello X-Injected: yes <b>body</b>"
    [attachment] = message["attachments"]
    download = get(mailcatcher, attachment["href"])
    assert download.content == b"hello"
    disposition = download.headers["Content-Disposition"]
    assert "\r" not in disposition and "\n" not in disposition
    assert "/" not in disposition.split(";")[1]  # the plain filename= has no path
    assert "Set-Cookie" not in download.headers
    assert download.cookies.keys() == []


def test_empty_message_id_and_no_subject(mailcatcher):
    message = caught(mailcatcher, "empty_message_id.eml")

    assert message["subject"] is None
    assert message["formats"] == ["source", "plain"]
    assert "empty Message-ID" in get(mailcatcher, f"/messages/{message['id']}.plain").text


def test_unknown_and_invalid_content_types(mailcatcher):
    message = caught(mailcatcher, "unknown_content_type.eml")

    [unknown] = message["attachments"]
    assert unknown["type"] == "application/x-work-it-unknown"
    assert (
        get(mailcatcher, unknown["href"]).headers["Content-Type"] == "application/x-work-it-unknown"
    )
    # An unparseable Content-Type falls back to text/plain, as RFC 2045 says.
    weird = get(mailcatcher, f"/messages/{message['id']}/parts/weird-type@example.com")
    assert weird.headers["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("cid", ["evil-svg@example.com", "weird-type@example.com"])
def test_active_parts_cannot_run_script_when_opened_directly(mailcatcher, cid):
    message = caught(mailcatcher, "unknown_content_type.eml")

    assert_no_script_allowed(get(mailcatcher, f"/messages/{message['id']}/parts/{cid}"))


def test_links_open_in_a_new_tab_and_remote_images_load_unless_blocked(
    mailcatcher, start_mailcatcher
):
    blocking = start_mailcatcher("--block-remote-content")
    for server, remote in ((mailcatcher, True), (blocking, False)):
        send(server.smtp_port, eml("remote_content.eml"))
        [message] = requests.get(f"{server.url}/messages", timeout=10).json()
        html = get(server, f"/messages/{message['id']}.html")

        assert html.text.index('<base target="_blank">') < html.text.index("<a ")
        policy = html.headers["Content-Security-Policy"]
        img_src = next(d for d in policy.split(";") if d.strip().startswith("img-src"))
        assert ("https:" in img_src) is remote
        shown = get(server, f"/messages/{message['id']}.json").json()
        assert shown.get("remote_content_blocked", False) is (not remote)


def test_a_request_for_another_host_name_is_refused(mailcatcher):
    """DNS rebinding: evil.example resolving to 127.0.0.1 must not read caught mail."""
    for path in ("/", "/messages", "/assets/inbox.js"):
        refused = get_as(mailcatcher, path, "evil.example")
        assert refused.status_code == 421, path
    for host in ("localhost", f"localhost:{mailcatcher.http_port}", "127.0.0.1", "[::1]:80"):
        assert get_as(mailcatcher, "/messages", host).status_code == 200, host


def get_as(server, path: str, host: str) -> requests.Response:
    return requests.get(f"{server.url}{path}", headers={"Host": host}, timeout=10)


def test_an_allowed_host_name_is_answered(start_mailcatcher):
    server = start_mailcatcher("--http-host-allow", "mail.internal")
    assert get_as(server, "/messages", "mail.internal:1080").status_code == 200
    assert get_as(server, "/messages", "other.internal").status_code == 421


def test_http_auth_guards_every_route(start_mailcatcher):
    server = start_mailcatcher("--http-auth", "ada:s3cret")
    for path in ("/", "/messages", "/assets/inbox.js"):
        refused = get(server, path)
        assert refused.status_code == 401, path
        assert refused.headers["WWW-Authenticate"].startswith("Basic ")
    wrong = requests.get(f"{server.url}/messages", auth=("ada", "nope"), timeout=10)
    assert wrong.status_code == 401
    assert requests.get(f"{server.url}/messages", auth=("ada", "s3cret"), timeout=10).json() == []


SCRIPT = b"document.documentElement.dataset.pwned = 'caught script';"


def script_message():
    """A mail with a script attachment and an inline script part, both with a cid."""
    message = simple_message("scripts")
    message.add_attachment(
        SCRIPT, "application", "javascript", filename="evil.js", cid="<evil-js@example.com>"
    )
    message.add_attachment(SCRIPT, "text", "javascript", cid="<inline-js@example.com>")
    message.get_payload()[-1].replace_header("Content-Disposition", "inline")
    return message


@pytest.mark.parametrize("cid", ["evil-js@example.com", "inline-js@example.com"])
def test_a_caught_script_part_is_served_as_a_download_browsers_will_not_run(mailcatcher, cid):
    send(mailcatcher.smtp_port, script_message())
    [message] = requests.get(f"{mailcatcher.url}/messages", timeout=10).json()

    part = get(mailcatcher, f"/messages/{message['id']}/parts/{cid}")
    assert part.content == SCRIPT
    # With nosniff, a browser runs no <script src> (nor worker) of a non-script type.
    assert part.headers["Content-Type"] == "application/octet-stream"
    assert part.headers["X-Content-Type-Options"] == "nosniff"
    assert part.headers["Content-Disposition"].startswith("attachment;")


def test_the_inbox_page_may_run_its_own_script_file_only(mailcatcher, start_mailcatcher):
    prefixed = start_mailcatcher("--http-path", "/mail/")
    for server, page in ((mailcatcher, "/"), (prefixed, "/mail/")):
        policy = get(server, page).headers["Content-Security-Policy"]
        directives = dict(d.strip().partition(" ")[::2] for d in policy.split(";"))
        # Not 'self': that would let any slip in the page load a caught part as script.
        assert directives["script-src"] == f"{server.url}{page}assets/inbox.js"
