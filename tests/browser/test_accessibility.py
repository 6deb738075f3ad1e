"""Everyone can use it (issue 20): axe-core finds nothing on any page in any state, light
or dark; no page scrolls sideways on a phone; the form works from the keyboard alone and
every control shows a focus ring; motion stops for those who ask; the status page
announces each change of status once.

axe-core comes bundled in axe-playwright-python (no CDN). Its audit injects axe's script
into the page, which the mail catcher's Content-Security-Policy (script-src names its one
script file) refuses, so the audit's browser contexts, and only theirs, bypass CSP
(``bypass_csp=True``). The pages keep their policies; tests/mailcatcher checks them.
"""

from __future__ import annotations

import re
import smtplib
from datetime import UTC, datetime, timedelta

import pytest
import requests
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from app import mailer, submissions
from app.extensions import mail
from app.giphy import Gif, offline_gif
from app.submissions import Submission
from app.thoughts import accept
from harness.polling import wait_for
from tests.mailcatcher.helpers import MailcatcherProcess, send, simple_message

pytestmark = pytest.mark.browser

AXE = Axe()
PHONE = {"width": 375, "height": 667}
LONG_THOUGHT = "Mondays, but make it dance " + "and-then-some-more-" * 8


@pytest.fixture
def worker_tuning() -> str:
    """run_jobs here only sets up states to look at: one worker kind is enough."""
    return "on"


@pytest.fixture
def audit_page(browser):
    """New pages in browser contexts of their own, closed after the test."""
    contexts = []

    def new_page(**options) -> Page:
        # bypass_csp: for the audit only, so that axe-core's injected script may run
        # (see the module's docstring). Reduced motion: no transition is caught
        # half-way when the audit switches to the dark colour scheme.
        options = {"bypass_csp": True, "reduced_motion": "reduce", **options}
        contexts.append(browser.new_context(**options))
        return contexts[-1].new_page()

    yield new_page
    for context in contexts:
        context.close()


def assert_accessible(page: Page, what: str, schemes=("light", "dark")) -> None:
    """No axe-core violation at all (every rule axe runs by default, best practices
    included), in each colour scheme."""
    for scheme in schemes:
        page.emulate_media(color_scheme=scheme)
        results = AXE.run(page)
        assert results.violations_count == 0, f"{what} ({scheme}):\n{results.generate_report()}"
    page.emulate_media(color_scheme="light")


def assert_no_sideways_scroll(page: Page, what: str) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{what} scrolls sideways: {widths[0]} px in {widths[1]} px"


# -- the app's pages -------------------------------------------------------------------


def fill_form(page: Page, email: str, thought: str, send_at: str = "") -> None:
    page.get_by_label("Your email address").fill(email)
    page.get_by_label("A thought").fill(thought)
    if send_at:
        page.get_by_label("Send at").fill(send_at)


def test_the_form_empty_with_errors_and_with_a_scheduled_send(audit_page, live_app):
    page = audit_page(timezone_id="UTC")
    page.goto(live_app)
    assert_accessible(page, "the empty form")

    fill_form(page, "not-an-address", "")
    page.get_by_role("button", name="Send me a GIF").click()
    expect(page.locator("#email-errors")).to_be_visible()
    expect(page.locator("#thought-errors")).to_be_visible()
    assert_accessible(page, "the form with errors")

    later = (datetime.now(UTC) + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")
    fill_form(page, "ada@example.com", "Later, a GIF", send_at=later)
    assert_accessible(page, "the form with a scheduled send")
    page.get_by_role("button", name="Send me a GIF").click()
    expect(page.locator("#status")).to_have_text("scheduled")
    assert_accessible(page, "the status page, scheduled")


def test_the_not_found_page(audit_page, live_app):
    page = audit_page()
    page.goto(f"{live_app}/thoughts/not-a-real-id")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    assert_accessible(page, "the 404 page")


def submission_in(state: str, app, redis, run_jobs, smtp_sink, thought: str = "Tea time"):
    """A submission in ``state``: run for real where a worker gets it there, written
    straight into its record where a worker would need a fault to."""
    with app.test_request_context():
        submission = accept("ada@example.com", thought)
    if state == "sent":
        run_jobs()
    elif state == "failed":
        smtp_sink.rcpt_replies["ada@example.com"] = ["550 5.1.1 No such user here"]
        run_jobs()
    elif state == "sending":
        submissions.update(redis, submission.id, status="sending", attempts=1)
    elif state == "unconfirmed":
        error = "SMTPServerDisconnected: Connection unexpectedly closed after DATA"
        submissions.update(redis, submission.id, status="unconfirmed", attempts=1, last_error=error)
    elif state == "cancelled":
        submissions.update(redis, submission.id, status="cancelled")
    assert submissions.load(redis, submission.id).status == state
    return submission.id


STATES = ["queued", "sending", "sent", "failed", "unconfirmed", "cancelled"]


@pytest.mark.parametrize("state", STATES)
def test_the_status_page(state, audit_page, live_app, app, redis, run_jobs, smtp_sink):
    submission_id = submission_in(state, app, redis, run_jobs, smtp_sink)
    page = audit_page()
    page.goto(f"{live_app}/thoughts/{submission_id}")
    expect(page.locator("#status")).to_have_text(state)
    assert_accessible(page, f"the status page, {state}")


def test_the_status_page_after_a_failed_attempt_and_a_retry(
    audit_page, live_app, app, redis, run_jobs, smtp_sink
):
    smtp_sink.rcpt_replies["ada@example.com"] = ["451 4.7.1 Greylisted, try again later"]
    with app.test_request_context():
        submission = accept("ada@example.com", "Second time lucky")
    run_jobs()
    page = audit_page()
    page.goto(f"{live_app}/thoughts/{submission.id}")
    expect(page.locator("#journey")).to_contain_text("attempt failed")
    assert_accessible(page, "the status page with a failed attempt in its journey")


# -- the GIF email, as a mail client shows it -------------------------------------------

GIFS = {
    "offline": lambda thought: offline_gif(thought),
    "giphy": lambda thought: Gif(source="giphy", url="https://media.giphy.test/a.gif", title=""),
}


@pytest.mark.parametrize("source", GIFS)
def test_the_gif_email_itself(source, audit_page, app):
    thought = "Mondays, but make it <dance>"
    submission = Submission(id=submissions.new_id(), email="ada@example.com", thought=thought)
    with app.app_context():
        html = mailer.build_message(submission, GIFS[source](thought)).html
    page = audit_page()
    page.route(re.compile(r"^(https?|cid):"), lambda route: route.abort())  # no network here
    page.set_content(html)
    expect(page.locator("blockquote")).to_have_text(thought)
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.title()
    assert_accessible(page, f"the GIF email ({source})", schemes=("light",))


# -- the mail catcher's inbox ---------------------------------------------------------------


@pytest.fixture(scope="module")
def catcher_server(tmp_path_factory):
    server = MailcatcherProcess(log_dir=tmp_path_factory.mktemp("a11y-mailcatcher"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def catcher(catcher_server):
    """The module's mail catcher, emptied before the test."""
    requests.delete(f"{catcher_server.url}/messages", timeout=10).raise_for_status()
    return catcher_server


def send_gif_email(make_app, server, thought: str = LONG_THOUGHT) -> None:
    """The GIF email as Work-It sends it: its own templates, Flask-Mail, SMTP."""
    app = make_app(MAIL_PORT=server.smtp_port)
    submission = Submission(id=submissions.new_id(), email="ada@example.com", thought=thought)
    with app.app_context():
        mail.send(mailer.build_message(submission, offline_gif(thought)))


def fill_inbox(make_app, server) -> None:
    send(server.smtp_port, simple_message("", "A message without a subject."))
    send(server.smtp_port, simple_message("Tagged", X_Tags="signup, beta"))
    send_gif_email(make_app, server)


def open_inbox(page: Page, server, rows: int = 0) -> None:
    page.goto(server.url)
    expect(page.locator("html")).to_have_attribute("data-live", "open")
    expect(page.locator("html")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#messages tbody tr")).to_have_count(rows)


def open_gif_email(page: Page) -> None:
    page.locator("#messages tbody tr", has_text="A GIF for your thought").click()
    expect(page.frame_locator("#html-view").locator("img")).to_be_visible()


def test_the_inbox_empty_full_and_searched(audit_page, catcher, make_app):
    page = audit_page()
    open_inbox(page, catcher)
    assert_accessible(page, "the empty inbox")

    fill_inbox(make_app, catcher)
    expect(page.locator("#messages tbody tr")).to_have_count(3)
    assert_accessible(page, "the inbox with messages")

    with smtplib.SMTP("127.0.0.1", catcher.smtp_port, timeout=30) as smtp:
        for n in range(30):  # more than the list's height: it scrolls
            smtp.send_message(simple_message(f"Bulk {n}", f"number {n}"))
    expect(page.locator("#messages tbody tr")).to_have_count(33)
    assert page.evaluate("document.getElementById('list').scrollHeight > innerHeight / 3")
    assert_accessible(page, "the inbox with more messages than it shows")

    page.get_by_placeholder("Search").fill("dance")
    expect(page.locator("html")).to_have_attribute("data-answered", "dance")
    expect(page.locator("#messages tbody tr")).to_have_count(1)
    assert_accessible(page, "the inbox after a search")

    page.get_by_placeholder("Search").fill("before:someday")
    expect(page.locator("#search-status")).to_contain_text("is not a date")
    assert_accessible(page, "the inbox with a search it cannot read")


def test_a_message_in_each_view(audit_page, catcher, make_app):
    fill_inbox(make_app, catcher)
    page = audit_page()
    open_inbox(page, catcher, rows=3)

    open_gif_email(page)
    assert_accessible(page, "the GIF email's HTML view")
    for name, view in [("Plain text", "#plain-view"), ("Source", "#source-view")]:
        page.get_by_role("tab", name=name).click()
        expect(page.locator(view)).to_contain_text("Mondays" if view == "#plain-view" else "MIME")
        assert_accessible(page, f"the GIF email's {name} view")
    page.get_by_role("tab", name="Attachments").click()
    expect(page.locator("#attachments-view a")).to_have_count(1)
    assert_accessible(page, "the GIF email's attachments")

    page.locator("#messages tbody tr", has_text="(no subject)").click()
    expect(page.locator("#message dd.subject")).to_have_text("")
    assert_accessible(page, "a message without a subject, selected")


def test_the_release_form(audit_page, tmp_path, make_app, smtp_sink):
    server = MailcatcherProcess("--release-smtp", f"127.0.0.1:{smtp_sink.port}", log_dir=tmp_path)
    server.start()
    try:
        send_gif_email(make_app, server)
        page = audit_page()
        open_inbox(page, server, rows=1)
        open_gif_email(page)
        page.get_by_label("Release to").fill("ada@example.com")
        page.get_by_role("button", name="Release", exact=True).click()
        expect(page.locator("#release-status")).to_have_text("Released to ada@example.com.")
        assert_accessible(page, "the message after a release")

        page.get_by_label("Release to").fill("bounce@example.com")
        smtp_sink.rcpt_replies["bounce@example.com"] = ["550 5.1.1 No such user"]
        page.get_by_role("button", name="Release", exact=True).click()
        expect(page.locator("#release-status")).not_to_have_text(re.compile("Releas(ing|ed)"))
        assert_accessible(page, "the message after a refused release")
    finally:
        server.stop()


# -- a phone's width --------------------------------------------------------------------


def test_no_app_page_scrolls_sideways_on_a_phone(
    audit_page, live_app, app, redis, run_jobs, smtp_sink
):
    page = audit_page(viewport=PHONE)
    page.goto(live_app)
    assert_no_sideways_scroll(page, "the form")
    page.get_by_role("button", name="Send me a GIF").click()
    expect(page.locator("#email-errors")).to_be_visible()
    assert_no_sideways_scroll(page, "the form with errors")

    for state in ("failed", "queued"):  # failed first: its run would send a queued one
        submission_id = submission_in(state, app, redis, run_jobs, smtp_sink, LONG_THOUGHT)
        page.goto(f"{live_app}/thoughts/{submission_id}")
        expect(page.locator("#status")).to_have_text(state)
        assert_no_sideways_scroll(page, f"the status page, {state}")


def test_the_inbox_on_a_phone_stacks_each_message(audit_page, catcher, make_app):
    fill_inbox(make_app, catcher)
    page = audit_page(viewport=PHONE)
    open_inbox(page, catcher, rows=3)
    assert_no_sideways_scroll(page, "the inbox")

    row = page.locator("#messages tbody tr", has_text="A GIF for your thought")
    boxes = [row.locator(f"td.{name}").bounding_box() for name in ("from", "subject", "created-at")]
    for above, below in zip(boxes, boxes[1:], strict=False):
        assert above["y"] + above["height"] <= below["y"] + 1, boxes  # one under the other
    for box in boxes:
        assert box["width"] >= PHONE["width"] * 0.8, boxes  # the width of the row, not a letter
    assert_accessible(page, "the inbox on a phone")

    open_gif_email(page)
    assert_no_sideways_scroll(page, "a message's HTML view")
    page.get_by_role("tab", name="Source").click()
    expect(page.locator("#source-view")).to_contain_text("Content-Type")
    assert_no_sideways_scroll(page, "a message's source")
    assert_accessible(page, "a message's source on a phone")


# -- the keyboard -----------------------------------------------------------------------

FOCUSED = """() => {
  const element = document.activeElement;
  const style = getComputedStyle(element);
  return {id: element.id, tag: element.tagName.toLowerCase(), text: element.textContent.trim(),
          outline: style.outlineStyle, width: parseFloat(style.outlineWidth)};
}"""


def tab_to(page: Page, element_id: str, most: int = 10) -> dict:
    for _ in range(most):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused["id"] == element_id:
            return focused
    raise AssertionError(f"#{element_id} not reached in {most} presses of Tab")


def rings_of_every_control(page: Page, most: int = 40) -> list[dict]:
    """Tab through the page once round, from wherever focus is now."""
    seen = []
    for _ in range(most):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused in seen[:1]:
            return seen
        if focused["tag"] != "body":  # between the last control and the first
            seen.append(focused)
    raise AssertionError(f"focus did not come round in {most} presses of Tab: {seen}")


def assert_rings(controls: list[dict], what: str) -> None:
    assert controls, f"nothing on {what} takes focus"
    for control in controls:
        ring = control["outline"] != "none" and control["width"] >= 2
        assert ring, f"no focus ring on {control} ({what})"


def test_the_form_by_keyboard_alone(page: Page, live_app):
    page.goto(live_app)
    assert tab_to(page, "email")["outline"] == "solid"
    page.keyboard.type("ada@example.com")
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED)["id"] == "thought"
    page.keyboard.type("Tabs, not mice")

    with page.expect_navigation():
        page.keyboard.press("Enter")

    expect(page.locator("#status")).to_have_text("queued")
    expect(page.locator("#status-heading")).to_be_focused()
    expect(page.locator(".thought")).to_have_text("Tabs, not mice")


def test_every_control_of_the_app_shows_a_focus_ring(page: Page, live_app, app):
    page.goto(live_app)
    controls = rings_of_every_control(page)
    assert {"email", "thought", "send_at"} <= {control["id"] for control in controls}
    assert "Send me a GIF" in [control["text"] for control in controls]
    assert_rings(controls, "the form")

    with app.test_request_context():
        submission = accept("ada@example.com", "Rings")
    page.goto(f"{live_app}/thoughts/{submission.id}")
    controls = rings_of_every_control(page)
    assert "mail-link" in [control["id"] for control in controls]
    assert_rings(controls, "the status page")


def test_the_inbox_by_keyboard(page: Page, catcher):
    for subject in ("oldest", "middle", "newest"):
        send(catcher.smtp_port, simple_message(subject, f"This one is the {subject}."))
    open_inbox(page, catcher, rows=3)
    selected = page.locator("#messages tbody tr.selected")

    page.keyboard.press("/")
    expect(page.get_by_placeholder("Search")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#list")).to_be_focused()
    assert page.evaluate(FOCUSED)["outline"] == "solid"

    page.keyboard.press("j")
    expect(selected).to_contain_text("newest")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(selected).to_contain_text("middle")
    expect(selected).to_have_attribute("aria-current", "true")
    page.keyboard.press("Enter")
    expect(page.locator("#message-body")).to_be_focused()
    expect(page.locator("#message dd.subject")).to_have_text("middle")

    page.get_by_role("tab", name="Plain text").focus()  # no HTML in it: Plain text is first
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Source")).to_be_focused()
    expect(page.get_by_role("tab", name="Source")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#source-view")).to_contain_text("Subject: middle")
    page.keyboard.press("ArrowRight")  # round to the first again
    expect(page.get_by_role("tab", name="Plain text")).to_have_attribute("aria-selected", "true")

    page.keyboard.press("Escape")
    expect(page.locator("#list")).to_be_focused()
    page.keyboard.press("ArrowUp")
    expect(selected).to_contain_text("newest")

    page.once("dialog", lambda dialog: dialog.dismiss())  # Delete asks first: no
    page.keyboard.press("Delete")
    expect(page.locator("#messages tbody tr")).to_have_count(3)
    page.once("dialog", lambda dialog: dialog.accept())  # yes
    page.keyboard.press("Delete")
    expect(page.locator("#messages tbody tr")).to_have_count(2)
    expect(page.locator("#messages tbody")).not_to_contain_text("newest")


def test_new_mail_is_announced_politely(page: Page, catcher):
    open_inbox(page, catcher)
    news = page.locator("#mail-news")
    expect(news).to_have_attribute("role", "status")  # polite: said at the next pause
    expect(news).to_have_text("")

    send(catcher.smtp_port, simple_message("First"))
    expect(news).to_have_text("1 new message")
    for n in range(3):
        send(catcher.smtp_port, simple_message(f"Burst {n}"))
    expect(page.locator("#messages tbody tr")).to_have_count(4)
    expect(news).to_contain_text("new message")


def test_every_control_of_the_inbox_shows_a_focus_ring(page: Page, catcher):
    send(catcher.smtp_port, simple_message("Ringed"))
    open_inbox(page, catcher, rows=1)
    page.keyboard.press("j")  # shows the message, focus stays where it was (nowhere)
    expect(page.locator("#message dd.subject")).to_have_text("Ringed")
    controls = rings_of_every_control(page)
    ids = {control["id"] for control in controls}
    assert {"search", "clear-all", "list", "download", "delete", "release-to"} <= ids, ids
    assert_rings(controls, "the inbox")


# -- motion and colour ---------------------------------------------------------------------

TRANSITION = "getComputedStyle(document.querySelector('button')).transitionDuration"


def test_reduced_motion_stops_transitions(browser, live_app, catcher):
    for motion, expected in (("no-preference", "0.15s"), ("reduce", "0s")):
        context = browser.new_context(reduced_motion=motion)
        try:
            page = context.new_page()
            page.goto(live_app)
            assert page.evaluate(TRANSITION) == expected, motion
            page.goto(catcher.url)
            durations = page.evaluate(
                "[...document.querySelectorAll('*')].map(e => getComputedStyle(e))"
                ".flatMap(s => [s.transitionDuration, s.animationDuration])"
            )
            assert set(durations) == {"0s"}, motion
        finally:
            context.close()


def test_dark_mode_is_followed(browser, live_app, catcher):
    context = browser.new_context(color_scheme="dark")
    try:
        page = context.new_page()
        for url in (live_app, catcher.url):
            page.goto(url)
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            red, green, blue = map(int, re.findall(r"\d+", background)[:3])
            assert max(red, green, blue) < 64, f"{url}: {background}"
    finally:
        context.close()


# -- the status page's live region ----------------------------------------------------------

WATCH_LIVE_REGION = """() => {
  window.__announced = [];
  const region = document.getElementById("status-live");
  const said = () => region.textContent.replace(/\\s+/g, " ").trim();
  new MutationObserver(() => window.__announced.push(said()))
    .observe(region, {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def test_each_change_of_status_is_announced_once(page: Page, live_app, app, redis):
    with app.test_request_context():
        submission = accept("ada@example.com", "Say it once")
    page.clock.install()  # the page's timers wait for the test: one poll at a time

    def polled(times: int) -> None:
        """Let the page ask the API ``times`` more times. Each poll is set off once the
        one before was shown, so all but the last have been shown when this returns."""
        for _ in range(times):
            with page.expect_request_finished(lambda request: "/api/thoughts/" in request.url):
                page.clock.run_for(5_000)  # the longest wait between two polls

    def announced() -> list[str]:
        return page.evaluate("window.__announced")

    page.goto(f"{live_app}/thoughts/{submission.id}")
    expect(page.locator("#status-live")).to_have_attribute("aria-live", "polite")
    page.evaluate(WATCH_LIVE_REGION)
    polled(4)
    assert announced() == []  # queued, still queued: nothing said

    submissions.update(redis, submission.id, status="sending", attempts=1)
    polled(4)
    sending = "Status: sending A worker is sending it now."
    assert announced() == [sending]
    assert page.locator("#status").text_content() == "sending"

    submissions.update(redis, submission.id, status="sent", sent=1)  # final: the last poll
    polled(1)
    sent = "Status: sent Sent! Look for it in the mail catcher."
    wait_for(lambda: announced() == [sending, sent], what=f"{sent!r} after {announced()}")
