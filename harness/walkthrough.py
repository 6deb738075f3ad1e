"""The lesson in a browser, against the processes `make dev` starts: what a learner
clicks and sees, step by step. tests/browser/test_lesson_walkthrough.py runs it
and checks each step; `make screenshots` runs the same walk to redraw the
lesson's pictures in docs/lesson/.
"""

import time
from pathlib import Path

import requests
from playwright.sync_api import Browser, Page, expect

from app.config import SETTINGS
from harness.devstack import DevStack
from harness.polling import wait_for

MAILER_DELAY_SECONDS = SETTINGS["MAILER_DELAY_SECONDS"][1]
PASSWORD = "pick-one"
VIEWPORT = {"width": 1100, "height": 900}
PHONE = {"width": 375, "height": 740}
SEND_SECONDS = 60  # a generous bound for one job to be sent, never a timing claim


class Shots:
    """Where the walk's screenshots go (nowhere, when ``folder`` is None)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def take(self, page: Page, name: str) -> None:
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=self.folder / f"{name}.png", full_page=True)


def submit(page: Page, stack: DevStack, email: str, thought: str) -> float:
    """Fill the form and press the button; seconds until the next page arrived."""
    page.goto(stack.url(5000))
    page.get_by_label("Your email address").fill(email)
    page.get_by_label("A thought").fill(thought)
    started = time.monotonic()
    page.get_by_role("button", name="Send me a GIF").click()
    page.wait_for_url("**/thoughts/*")
    return time.monotonic() - started


def caught(stack: DevStack, address: str) -> int:
    """How many caught emails went to ``address`` (the mail catcher's API)."""
    messages = requests.get(stack.url(1080, "/messages"), timeout=10).json()
    return sum(f"<{address}>" in m["recipients"] for m in messages)


def slow_page(page: Page, stack: DevStack, shots: Shots) -> None:
    """Step 1: with WORKIT_DELIVERY=now the request itself waits for the mailer."""
    stack.run("cp .env.example .env")
    stack.start("WORKIT_DELIVERY=now make dev")
    took = submit(page, stack, "you@example.test", "Mondays, but make it dance")
    assert took >= MAILER_DELAY_SECONDS, f"the now-mode page took only {took:.2f}s"
    expect(page.locator("#status")).to_have_text("sent")
    expect(page.locator("#what-happened")).to_contain_text("WORKIT_DELIVERY=now")
    expect(page.locator("#server-time")).to_contain_text("Served in")
    shots.take(page, "slow-page")


def mail_catcher(page: Page, stack: DevStack, shots: Shots) -> None:
    """Step 2: the page's link opens the email in the catcher, GIF and all."""
    page.locator("#mail-link").click()
    expect(page.locator("html")).to_have_attribute("data-loaded", "true")
    page.locator("#messages tbody tr", has_text="Mondays, but make it dance").first.click()
    image = page.frame_locator("#html-view").locator("img")
    expect(image).to_be_visible()
    wait_for(lambda: image.evaluate("img => img.complete && img.naturalWidth > 0"), what="GIF")
    shots.take(page, "mail-catcher")
    on_a_phone(page, shots)


def on_a_phone(page: Page, shots: Shots) -> None:
    """The same inbox at a phone's width: each message's sender, subject and time
    stacked, and nothing to scroll sideways."""
    page.set_viewport_size(PHONE)
    try:
        page.keyboard.press("Escape")  # back to the list
        expect(page.locator("#messages tbody tr").first).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the inbox scrolls sideways at {PHONE['width']} px"
        shots.take(page, "mail-catcher-phone")
    finally:
        page.set_viewport_size(VIEWPORT)


def form_errors(page: Page, stack: DevStack, shots: Shots) -> None:
    """A mistake gets a message per field, and what was typed stays."""
    page.goto(stack.url(5000))
    page.get_by_label("Your email address").fill("not-an-address")
    page.get_by_role("button", name="Send me a GIF").click()
    expect(page.locator("#email-errors")).to_contain_text("not a valid email address")
    expect(page.locator("#thought-errors")).to_contain_text("cannot be blank")
    expect(page.get_by_label("Your email address")).to_have_value("not-an-address")
    shots.take(page, "form-errors")


def fast_page(page: Page, stack: DevStack, shots: Shots) -> str:
    """Step 7: with a job, the page answers before the mailer's delay and then
    follows the job to `sent` without a reload. Returns the page's address."""
    stack.run(f"echo DASHBOARD_PASSWORD={PASSWORD} >> .env")
    stack.start("make dev")
    took = submit(page, stack, "you@example.test", "Now it is a job")
    assert took < MAILER_DELAY_SECONDS, f"the later-mode page took {took:.2f}s"
    assert page.locator("#submission").get_attribute("data-status") in {"queued", "sending"}
    page.evaluate("window.__sameDocument = true")
    expect(page.locator("#status")).to_have_text("sent", timeout=SEND_SECONDS * 1000)
    expect(page.locator("#journey li", has_text="sent")).to_be_visible()
    assert page.evaluate("window.__sameDocument") is True
    shots.take(page, "status-sent")
    return page.url


def dashboard(browser: Browser, page: Page, stack: DevStack, shots: Shots) -> None:
    """Step 8: the dashboard refuses strangers and shows a signed-in learner the job."""
    stranger = browser.new_context()  # no credentials: the browser would ask for a password
    assert stranger.request.get(stack.url(5000, "/rq/")).status == 401
    stranger.close()
    page.locator("#dashboard-link").click()
    expect(page.locator("#job-data")).to_contain_text("finished")
    page.goto(stack.url(5000, "/rq/"))
    expect(page.locator("tr", has_text="mailers")).to_be_visible()
    shots.take(page, "dashboard")


def requeue_dead_job(page: Page, stack: DevStack, shots: Shots) -> None:
    """Rules 4 and 5: a job that died on a dead mail server, requeued from the
    dashboard once the server is back, delivers exactly one email."""
    stack.start("MAIL_PORT=2525 RETRY_MAX=0 MAILER_DELAY_SECONDS=0 make dev")
    submit(page, stack, "dead@example.test", "Try me again later")
    expect(page.locator("#status")).to_have_text("failed", timeout=SEND_SECONDS * 1000)
    submission_page = page.url
    stack.start("make dev")
    page.goto(submission_page)
    page.locator("#dashboard-link").click()
    requeue = page.locator("#requeue-job-btn")
    expect(requeue).to_be_visible()
    shots.take(page, "dashboard-failed")
    with page.expect_response(lambda r: r.url.endswith("/requeue")) as requeued:
        requeue.click()
    assert requeued.value.ok

    def sent() -> bool:
        """A `failed` page stops polling (its job is done), so look again, as a person
        would, until the requeued job has run."""
        page.goto(submission_page)
        return page.locator("#status").inner_text() == "sent"

    wait_for(sent, SEND_SECONDS, "the requeued job to send", interval=0.5)
    assert caught(stack, "dead@example.test") == 1


def walk(browser: Browser, stack: DevStack, shots: Shots) -> None:
    context = browser.new_context(
        viewport=VIEWPORT, http_credentials={"username": "admin", "password": PASSWORD}
    )
    page = context.new_page()
    try:
        slow_page(page, stack, shots)
        mail_catcher(page, stack, shots)
        form_errors(page, stack, shots)
        fast_page(page, stack, shots)
        dashboard(browser, page, stack, shots)
        requeue_dead_job(page, stack, shots)
    finally:
        context.close()
