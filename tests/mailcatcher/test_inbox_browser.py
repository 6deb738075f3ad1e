"""The inbox page in Debian's Chromium, against the real server.

Each test waits for the page's websocket to be open (html[data-live=open]) and its
list to be loaded before it sends mail, as MailCatcher's own spec does.
"""

from __future__ import annotations

import re
import smtplib
from urllib.parse import quote

import pytest
import requests
from playwright.sync_api import Page, expect

from harness.polling import wait_for
from tests.mailcatcher.helpers import eml, send, simple_message

pytestmark = pytest.mark.browser


def open_inbox(page: Page, server) -> None:
    page.goto(server.url)
    expect(page.locator("html")).to_have_attribute("data-live", "open")
    expect(page.locator("html")).to_have_attribute("data-loaded", "true")
    page.evaluate("window.__notReloaded = true")  # gone if the page ever reloads


def row(page: Page, text: str):
    return page.locator("#messages tbody tr", has_text=text)


def listed(server) -> list[dict]:
    return requests.get(f"{server.url}/messages", timeout=10).json()


def test_gif_email_arrives_live_shows_its_cid_image_and_can_be_deleted(page: Page, mailcatcher):
    open_inbox(page, mailcatcher)

    send(mailcatcher.smtp_port, eml("inline_gif.eml"))
    expect(row(page, "Your GIF is ready")).to_be_visible()
    assert page.evaluate("window.__notReloaded") is True

    with page.expect_response(re.compile(r"/messages/\d+/parts/work-it-gif@work-it\.test$")) as gif:
        row(page, "Your GIF is ready").click()
    assert gif.value.status == 200
    assert gif.value.headers["content-type"] == "image/gif"
    expect(page.get_by_role("tab", name="HTML")).to_have_attribute("aria-selected", "true")
    image = page.frame_locator("#html-view").locator("img#gif")
    expect(image).to_be_visible()
    wait_for(lambda: image.evaluate("img => img.complete && img.naturalWidth > 0"), what="the GIF")

    page.get_by_role("tab", name="Attachments").click()
    expect(page.locator("#attachments-view a")).to_have_text("party.gif")
    page.get_by_role("tab", name="Plain text").click()
    expect(page.locator("#plain-view")).to_have_text("Here is your GIF. Have a nice day.")
    page.get_by_role("tab", name="Source").click()
    expect(page.locator("#source-view")).to_contain_text("Content-ID: <work-it-gif@work-it.test>")
    expect(page.get_by_role("link", name="Download .eml")).to_have_attribute(
        "href", re.compile(r"/messages/\d+\.eml$")
    )

    page.get_by_role("button", name="Delete").click()
    expect(row(page, "Your GIF is ready")).to_have_count(0)
    expect(page.locator("#message")).to_be_hidden()
    assert listed(mailcatcher) == []


def test_changes_made_elsewhere_show_up_without_reload(page: Page, mailcatcher):
    send(mailcatcher.smtp_port, simple_message("already here"))
    open_inbox(page, mailcatcher)
    expect(row(page, "already here")).to_be_visible()

    send(mailcatcher.smtp_port, simple_message("newer"))
    expect(page.locator("#messages tbody tr").first).to_contain_text("newer")  # newest first
    [old, _] = listed(mailcatcher)
    requests.delete(f"{mailcatcher.url}/messages/{old['id']}", timeout=10)
    expect(row(page, "already here")).to_have_count(0)
    requests.delete(f"{mailcatcher.url}/messages", timeout=10)
    expect(page.locator("#messages tbody tr")).to_have_count(0)
    assert page.evaluate("window.__notReloaded") is True


def test_keyboard_moves_through_the_list(page: Page, mailcatcher):
    for subject in ("oldest", "middle", "newest"):
        send(mailcatcher.smtp_port, simple_message(subject))
    open_inbox(page, mailcatcher)
    selected = page.locator("#messages tbody tr.selected")
    subject = page.locator("#message dd.subject")

    page.keyboard.press("ArrowDown")
    expect(selected).to_contain_text("newest")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(selected).to_contain_text("oldest")
    expect(subject).to_have_text("oldest")
    page.keyboard.press("ArrowUp")
    expect(selected).to_contain_text("middle")
    expect(subject).to_have_text("middle")


def test_search_filters_sender_recipients_and_subject(page: Page, mailcatcher):
    send(
        mailcatcher.smtp_port,
        simple_message("Invoice 42"),
        "billing@shop.test",
        ["ann@example.com"],
    )
    send(
        mailcatcher.smtp_port, simple_message("Welcome"), "hello@work-it.test", ["bob@example.com"]
    )
    open_inbox(page, mailcatcher)
    visible = page.locator("#messages tbody tr:visible")

    page.get_by_placeholder("Search").fill("bob@")
    expect(visible).to_have_count(1)
    expect(visible).to_contain_text("Welcome")
    page.get_by_placeholder("Search").fill("shop invoice")
    expect(visible).to_contain_text("Invoice 42")
    send(mailcatcher.smtp_port, simple_message("Unrelated"))
    expect(row(page, "Unrelated")).to_be_hidden()
    page.get_by_placeholder("Search").fill("")
    expect(visible).to_have_count(3)


def test_clear_all_asks_then_empties_the_inbox(page: Page, mailcatcher):
    send(mailcatcher.smtp_port, simple_message("one"))
    open_inbox(page, mailcatcher)
    page.once("dialog", lambda dialog: dialog.accept())

    page.get_by_role("button", name="Clear all").click()

    expect(page.locator("#messages tbody tr")).to_have_count(0)
    assert listed(mailcatcher) == []


def test_hostile_email_cannot_script_the_inbox_or_reach_the_api(page: Page, mailcatcher):
    open_inbox(page, mailcatcher)
    send(mailcatcher.smtp_port, eml("hostile_script.eml"))

    hostile = row(page, "onerror")
    expect(hostile).to_be_visible()
    expect(hostile.locator("td.subject")).to_have_text(
        "<img src=x onerror=\"document.body.dataset.pwned='subject'\">"
    )
    expect(page.locator("#messages img")).to_have_count(0)
    hostile.click()
    frame = page.frame_locator("#html-view")
    expect(frame.locator("#hostile-heading")).to_be_visible()
    frame.locator("#js-link").click()
    frame.locator("#form-button").click()
    page.get_by_role("tab", name="Plain text").click()
    expect(page.locator("#plain-view")).to_have_text(
        '<script>document.body.dataset.pwned = "plain"</script>'
    )

    # Something that did run would have marked a document or deleted the mail.
    # The frame is still showing the message (the form did not navigate it away).
    expect(frame.locator("#hostile-heading")).to_be_attached()
    assert frame.locator("html").get_attribute("data-pwned") is None
    assert frame.locator("body").get_attribute("data-pwned") is None
    assert page.evaluate(
        "[document.documentElement.dataset.pwned, document.body.dataset.pwned]"
    ) == [
        None,
        None,
    ]
    assert page.evaluate("window.__notReloaded") is True
    assert page.url.rstrip("/") == mailcatcher.url
    [message] = listed(mailcatcher)

    # Opened directly, outside the inbox's iframe, the body still cannot run script.
    for path in (f"{message['id']}.html", f"{message['id']}/parts/hostile-html@example.com"):
        page.goto(f"{mailcatcher.url}/messages/{path}")
        expect(page.locator("#hostile-heading")).to_be_visible()
        assert page.evaluate(
            "[document.documentElement.dataset.pwned, document.body.dataset.pwned]"
        ) == [
            None,
            None,
        ]
    assert listed(mailcatcher) == [message]


# Three ways a body would open a dialog if its script ran: a script, an event handler
# on the body's load, and one on an image that fails.
ALERTING_HTML = (
    "<!doctype html><html><head><script>alert('script')</script></head>"
    "<body onload=\"alert('onload')\"><h1 id=alerting>Alerting message</h1>"
    '<img src="cid:does-not-exist" onerror="alert(\'onerror\')"></body></html>'
)


def test_a_caught_email_cannot_open_a_dialog(page: Page, mailcatcher):
    """No dialog from the body in the inbox or opened directly. First, the control: the
    same body on a page that lets script run opens its three dialogs, and the listener
    hears them, so hearing none later means the sandbox held, not a deaf listener."""
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.set_content(ALERTING_HTML)  # returns after the load, so after every handler
    assert sorted(dialogs) == ["onerror", "onload", "script"]

    dialogs.clear()
    open_inbox(page, mailcatcher)
    send(mailcatcher.smtp_port, html_email("Alerting", ALERTING_HTML))
    row(page, "Alerting").click()
    expect(page.frame_locator("#html-view").locator("#alerting")).to_be_visible()
    page.locator("#html-view").element_handle().content_frame().wait_for_load_state("load")
    assert dialogs == []

    [message] = listed(mailcatcher)
    page.goto(f"{mailcatcher.url}/messages/{message['id']}.html")  # waits for its load
    expect(page.locator("#alerting")).to_be_visible()
    assert dialogs == []


def test_a_search_in_the_address_fills_the_box_and_filters(page: Page, mailcatcher):
    send(mailcatcher.smtp_port, simple_message("A GIF for your thought: Tea & <cake>, 100%"))
    send(mailcatcher.smtp_port, simple_message("A GIF for your thought: Mondays"))
    search = quote("Tea & <cake>, 100%", safe="")  # as Work-It's submission page links it

    page.goto(f"{mailcatcher.url}/#search={search}")
    expect(page.locator("html")).to_have_attribute("data-loaded", "true")
    visible = page.locator("#messages tbody tr:visible")

    expect(page.get_by_placeholder("Search")).to_have_value("Tea & <cake>, 100%")
    expect(visible).to_have_count(1)
    expect(visible).to_contain_text("Tea & <cake>, 100%")

    page.evaluate("window.__notReloaded = true")
    page.evaluate("location.hash = '#search=' + encodeURIComponent('Mondays')")
    expect(page.get_by_placeholder("Search")).to_have_value("Mondays")
    expect(visible).to_have_count(1)
    expect(visible).to_contain_text("Mondays")
    assert page.evaluate("window.__notReloaded") is True


# -- links and remote content ---------------------------------------------------------


def html_email(subject: str, html: str) -> bytes:
    head = f"From: app@example.com\r\nTo: user@example.com\r\nSubject: {subject}\r\n"
    head += "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    return (head + html + "\r\n").encode()


def site(httpserver):
    """The app a caught email links to: a confirmation page and a logo."""
    httpserver.expect_request("/confirm").respond_with_data(
        "<title>Confirmed</title><h1 id=done>Thanks, confirmed</h1>", content_type="text/html"
    )
    httpserver.expect_request("/logo.gif").respond_with_data(GIF, content_type="image/gif")
    return httpserver


GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def test_a_link_in_a_caught_email_opens_its_page_in_a_new_tab(page: Page, mailcatcher, httpserver):
    site(httpserver)
    link = httpserver.url_for("/confirm")
    logo = httpserver.url_for("/logo.gif")
    open_inbox(page, mailcatcher)
    html = f'<p><a id="confirm" href="{link}">Confirm your address</a></p><img src="{logo}">'
    send(mailcatcher.smtp_port, html_email("Confirm please", html))

    row(page, "Confirm please").click()
    confirm = page.frame_locator("#html-view").locator("a#confirm")
    expect(confirm).to_be_visible()
    wait_for(lambda: any(r.path == "/logo.gif" for r, _ in httpserver.log), what="the remote image")

    with page.context.expect_page() as opened:
        confirm.click()
    tab = opened.value
    tab.wait_for_load_state()
    expect(tab.locator("#done")).to_have_text("Thanks, confirmed")
    assert tab.url == link
    assert page.url.startswith(mailcatcher.url)  # the inbox stays where it was


def test_urls_in_the_plain_text_view_are_links(page: Page, mailcatcher, httpserver):
    site(httpserver)
    link = httpserver.url_for("/confirm")
    open_inbox(page, mailcatcher)
    send(mailcatcher.smtp_port, simple_message("Plain link", f"Confirm here: {link}.\nThanks!"))

    row(page, "Plain link").click()
    page.get_by_role("tab", name="Plain text").click()
    anchor = page.locator("#plain-view a")
    expect(anchor).to_have_attribute("href", link)
    expect(page.locator("#plain-view")).to_have_text(f"Confirm here: {link}.\nThanks!")
    with page.context.expect_page() as opened:
        anchor.click()
    expect(opened.value.locator("#done")).to_have_text("Thanks, confirmed")


def test_blocked_remote_content_is_not_fetched_and_the_inbox_says_so(
    page: Page, start_mailcatcher, httpserver
):
    site(httpserver)
    server = start_mailcatcher("--block-remote-content")
    open_inbox(page, server)
    html = f'<p id="hello">Hello</p><img src="{httpserver.url_for("/logo.gif")}">'
    send(server.smtp_port, html_email("Blocked logo", html))

    row(page, "Blocked logo").click()
    expect(page.frame_locator("#html-view").locator("#hello")).to_be_visible()
    expect(page.locator("#remote-blocked")).to_be_visible()
    image = page.frame_locator("#html-view").locator("img")
    wait_for(lambda: image.evaluate("img => img.complete"), what="the image to give up")
    assert image.evaluate("img => img.naturalWidth") == 0
    assert not any(r.path == "/logo.gif" for r, _ in httpserver.log)


def test_the_inbox_works_under_an_http_path(page: Page, start_mailcatcher):
    server = start_mailcatcher("--http-path", "/tools/mail")
    page.goto(f"{server.url}/tools/mail")  # redirected to .../mail/
    expect(page.locator("html")).to_have_attribute("data-live", "open")
    expect(page.locator("html")).to_have_attribute("data-loaded", "true")

    send(server.smtp_port, simple_message("Behind a prefix", "Still here."))
    row(page, "Behind a prefix").click()
    page.get_by_role("tab", name="Plain text").click()
    expect(page.locator("#plain-view")).to_have_text("Still here.")


# -- a big inbox: pages, server-side search, tags ---------------------------------------


def test_a_big_inbox_shows_a_page_and_more_on_demand(page: Page, mailcatcher):
    with smtplib.SMTP("127.0.0.1", mailcatcher.smtp_port, timeout=30) as smtp:
        for n in range(205):
            smtp.send_message(simple_message(f"Bulk {n}", f"number {n}"))
    open_inbox(page, mailcatcher)
    rows = page.locator("#messages tbody tr")

    expect(rows).to_have_count(200)
    expect(rows.first).to_contain_text("Bulk 204")  # newest first
    expect(page).to_have_title("MailCatcher (205)")
    page.get_by_role("button", name="Show more (200 of 205)").click()
    expect(rows).to_have_count(205)
    expect(rows.last).to_contain_text("Bulk 0")
    expect(page.get_by_role("button", name=re.compile("Show more"))).to_be_hidden()

    page.get_by_placeholder("Search").fill('"number 17"')  # a phrase in the body, on the server
    expect(rows).to_have_count(11)  # 17 and 170-179
    expect(page).to_have_title("MailCatcher (11)")


def test_tags_show_in_the_list_and_can_be_searched(page: Page, mailcatcher):
    send(mailcatcher.smtp_port, simple_message("Tagged", X_Tags="signup, beta"))
    plus = ["ada+reset@example.com"]
    send(mailcatcher.smtp_port, simple_message("Plus"), "app@example.com", plus)
    open_inbox(page, mailcatcher)

    expect(row(page, "Tagged").locator(".tag")).to_have_text(["beta", "signup"])
    expect(row(page, "Plus").locator(".tag")).to_have_text(["reset"])
    page.get_by_placeholder("Search").fill("tag:reset")
    expect(page.locator("#messages tbody tr")).to_have_count(1)
    expect(page.locator("#messages tbody tr")).to_contain_text("Plus")


def test_the_inbox_works_live_behind_http_auth(browser, start_mailcatcher):
    server = start_mailcatcher("--http-auth", "ada:s3cret")
    context = browser.new_context(http_credentials={"username": "ada", "password": "s3cret"})
    try:
        page = context.new_page()
        open_inbox(page, server)
        send(server.smtp_port, simple_message("Behind a password"))
        expect(row(page, "Behind a password")).to_be_visible()
    finally:
        context.close()


def test_a_caught_script_cannot_run_in_the_inbox_page_even_if_injected(page: Page, mailcatcher):
    """Issue 21: were markup ever injected into the inbox, a <script src> pointing at a
    caught part must still not run: the page's CSP allows only its own script file."""
    from tests.mailcatcher.test_hostile import script_message

    send(mailcatcher.smtp_port, script_message())
    [message] = listed(mailcatcher)
    open_inbox(page, mailcatcher)

    outcome = page.evaluate(
        """src => new Promise(done => {
            const script = document.createElement("script");
            script.onload = () => done("ran");
            script.onerror = () => done("refused");
            script.src = src;
            document.head.append(script);
        })""",
        f"messages/{message['id']}/parts/evil-js@example.com",
    )
    assert outcome == "refused"
    assert page.evaluate("document.documentElement.dataset.pwned") is None


def test_a_right_to_left_override_stays_inside_its_cell(page: Page, mailcatcher):
    """A subject with U+202E shows reversed in its own <bdi>, never past it: not over a
    tag chip beside it, nor into the next cell."""
    message = simple_message("cache test \u202egnp.exe")
    message["X-Tags"] = "urgent"
    send(mailcatcher.smtp_port, message, "a@example.com")
    open_inbox(page, mailcatcher)
    subject = row(page, "cache test").locator("td.subject")
    expect(subject.locator("bdi")).to_have_text("cache test \u202egnp.exe")
    expect(subject.locator(".tag")).to_have_text("urgent")
    for cell in ("td.subject bdi", "td.from bdi", "td.to bdi"):
        style = (
            row(page, "cache test").locator(cell).evaluate("e => getComputedStyle(e).unicodeBidi")
        )
        assert style == "isolate", cell
