"""What a person does: fill the form, land on the status page, watch it turn to sent."""

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_submit_and_watch_the_status_update_without_a_reload(page, live_app, run_jobs, smtp_sink):
    page.goto(live_app)
    page.get_by_label("Your email address").fill("ada@example.com")
    page.get_by_label("A thought").fill("Mondays, but make it <dance>")
    page.get_by_role("button", name="Send me a GIF").click()

    expect(page.locator("#status")).to_have_text("queued")
    expect(page.locator(".thought")).to_have_text("Mondays, but make it <dance>")
    page.evaluate("window.__sameDocument = true")

    run_jobs()

    expect(page.locator("#status")).to_have_text("sent", timeout=15_000)
    expect(page.locator("#status-detail")).to_contain_text("mail catcher")
    assert page.evaluate("window.__sameDocument") is True  # updated in place, no reload
    assert len(smtp_sink.messages) == 1


def test_invalid_input_shows_a_message_per_field(page, live_app):
    page.goto(live_app)
    page.get_by_label("Your email address").fill("not-an-address")
    page.get_by_role("button", name="Send me a GIF").click()

    expect(page.locator("#email-errors")).to_contain_text("not a valid email address")
    expect(page.locator("#thought-errors")).to_contain_text("cannot be blank")
    expect(page.get_by_label("Your email address")).to_have_value("not-an-address")
