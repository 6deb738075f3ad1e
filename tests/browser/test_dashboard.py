"""Lesson step 8: the job dashboard, as a signed-in person sees it."""

import pytest
from playwright.sync_api import expect

from app.thoughts import accept

pytestmark = pytest.mark.browser


@pytest.fixture
def app_config(app_config):
    return {**app_config, "DASHBOARD_PASSWORD": "s3cret"}


def test_a_signed_in_person_sees_the_mailers_queue(browser, live_app, app):
    with app.test_request_context():
        accept("ada@example.com", "waiting in line")
    context = browser.new_context(http_credentials={"username": "admin", "password": "s3cret"})
    page = context.new_page()

    page.goto(f"{live_app}/rq/")

    row = page.locator("tr", has_text="mailers")
    expect(row).to_be_visible()
    expect(row).to_contain_text("1")
    context.close()
