import base64
import re
import time

from app import submissions
from tests.conftest import ThoughtForm


def test_form_page_has_both_fields_and_a_csrf_token(client):
    page = client.get("/").get_data(as_text=True)
    assert 'name="email"' in page
    assert 'name="thought"' in page
    assert 'name="csrf_token"' in page


def test_valid_post_stores_enqueues_and_redirects_with_303(thought_form, redis):
    response = thought_form.submit(email="ada@example.com", thought="Tea time")

    assert response.status_code == 303
    submission_id = response.headers["Location"].rsplit("/", 1)[-1]
    stored = submissions.load(redis, submission_id)
    assert (stored.email, stored.thought) == ("ada@example.com", "Tea time")
    assert stored.status == "queued"
    assert redis.llen("rq:queue:mailers") == 1


def test_submission_page_shows_status_and_escapes_the_thought(thought_form, client):
    response = thought_form.submit(thought="<script>alert(1)</script>")
    page = client.get(response.headers["Location"]).get_data(as_text=True)

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    assert 'id="status">queued<' in page


def test_submission_ids_are_long_and_random(thought_form):
    first = thought_form.submit().headers["Location"].rsplit("/", 1)[-1]
    second = thought_form.submit().headers["Location"].rsplit("/", 1)[-1]
    assert first != second
    assert len(first) >= 22  # 128 bits, URL-safe base64


def test_unknown_submission_is_a_404_page(client):
    response = client.get("/thoughts/not-a-real-id")
    assert response.status_code == 404
    assert "Not found" in response.get_data(as_text=True)


def page_for(client, response) -> str:
    return client.get(response.headers["Location"]).get_data(as_text=True)


def journey_items(page: str) -> list[tuple[str, str, str]]:
    """(time since accepted, event, detail) for each item of the page's <ol id="journey">."""
    journey = re.search(r'<ol id="journey".*?</ol>', page, re.S).group(0)
    item = re.compile(
        r'class="when"[^>]*>([^<]*)</time>\s*<strong class="event">([^<]*)</strong>\s*'
        r'<span class="detail">([^<]*)</span>'
    )
    return item.findall(journey)


def test_the_page_masks_the_address_before_and_after_sending(thought_form, client, run_jobs):
    response = thought_form.submit(email="ada.lovelace@example.com")
    assert "a***@example.com" in page_for(client, response)
    assert "ada.lovelace@example.com" not in page_for(client, response)

    run_jobs()

    page = page_for(client, response)
    assert 'id="status">sent<' in page
    assert "on its way to a***@example.com" in page
    assert "ada.lovelace" not in page


def test_the_page_lists_the_journey_in_order_with_times_since_accepted(
    thought_form, client, run_jobs, redis
):
    response = thought_form.submit()
    run_jobs()

    items = journey_items(page_for(client, response))
    assert [event for _, event, _ in items] == ["accepted", "enqueued", "started", "sent"]
    assert items[0][0] == "+0 ms"
    assert all(re.fullmatch(r"\+\d+ ms|\+\d+\.\d\d s", when) for when, _, _ in items)
    job_id = submissions.load(redis, response.headers["Location"].rsplit("/", 1)[-1]).job_id
    assert items[1][2] == f"job {job_id} on queue mailers"
    assert items[2][2] == "attempt 1"


def test_a_failed_attempt_shows_on_the_page_escaped(thought_form, client, run_jobs, smtp_sink):
    smtp_sink.rcpt_replies["ada@example.com"] = ["451 <b>Greylisted</b>, try later"]
    response = thought_form.submit()
    run_jobs()

    page = page_for(client, response)
    events = [event for _, event, _ in journey_items(page)]
    assert events == ["accepted", "enqueued", "started", "attempt failed", "started", "sent"]
    assert "&lt;b&gt;Greylisted&lt;/b&gt;" in page and "<b>Greylisted" not in page
    # The SMTP error quotes the recipient; the page shows it masked.
    assert "ada@example.com" not in page
    assert "{&#39;a***@example.com&#39;: (451" in page


def test_a_refused_address_is_masked_in_the_failure_too(thought_form, client, run_jobs, smtp_sink):
    smtp_sink.rcpt_replies["ada@example.com"] = ["550 No such user"]
    response = thought_form.submit()
    run_jobs()

    page = page_for(client, response)
    assert 'id="status">failed<' in page
    assert "No such user" in page
    assert "ada@example.com" not in page
    assert "a***@example.com" in page


def test_later_mode_explains_the_job_and_the_worker(thought_form, client, redis):
    response = thought_form.submit()
    stored = submissions.load(redis, response.headers["Location"].rsplit("/", 1)[-1])
    panel = what_happened(page_for(client, response))

    assert f"enqueued job <code>{stored.job_id}</code>" in panel
    assert "on queue <code>mailers</code> in one Redis transaction" in panel
    assert "A separate worker process picks the job up" in panel


def test_now_mode_says_the_request_ran_the_job_even_after_the_setting_changed(
    thought_form, client, app
):
    app.config["WORKIT_DELIVERY"] = "now"
    response = thought_form.submit()
    app.config["WORKIT_DELIVERY"] = "later"

    page = page_for(client, response)
    assert "the web request ran the job itself" in what_happened(page)
    assert "enqueued job" not in what_happened(page)
    assert [event for _, event, _ in journey_items(page)] == [
        "accepted",
        "delivering in the request",
        "started",
        "sent",
    ]


def test_the_form_post_time_shows_once_on_the_page_it_led_to(thought_form, client):
    first = thought_form.submit()
    assert re.search(r"The form post was answered in \d+ ms\.", page_for(client, first))
    assert "The form post was answered in" not in page_for(client, first)  # a reload

    thought_form.submit()  # a second post: its time is not the first page's
    assert "The form post was answered in" not in page_for(client, first)


def test_now_mode_post_time_includes_the_slow_mailer(thought_form, client, app):
    app.config.update(WORKIT_DELIVERY="now", MAILER_DELAY_SECONDS=1.1)
    page = page_for(client, thought_form.submit())
    assert re.search(r"The form post was answered in 1\.\d\d s\.", page)


def test_with_a_password_the_page_links_the_job_in_the_dashboard(make_app, redis):
    app = make_app(DASHBOARD_PASSWORD="s3cret")
    client = app.test_client()
    response = ThoughtForm(client).submit()
    job_id = submissions.load(redis, response.headers["Location"].rsplit("/", 1)[-1]).job_id

    panel = what_happened(page_for(client, response))
    assert f'href="/rq/0/view/job/{job_id}"' in panel
    assert "DASHBOARD_PASSWORD" not in panel
    signed_in = {"Authorization": "Basic " + base64.b64encode(b"admin:s3cret").decode()}
    assert client.get(f"/rq/0/view/job/{job_id}", headers=signed_in).status_code == 200


def test_without_a_password_the_page_says_how_to_turn_the_dashboard_on(thought_form, client):
    panel = what_happened(page_for(client, thought_form.submit()))
    assert "/rq/0/view/job/" not in panel
    assert "set\n    <code>DASHBOARD_PASSWORD</code> in <code>.env</code>" in panel


def test_the_page_links_a_mail_catcher_search_for_the_thought(make_app):
    client = make_app(MAILCATCHER_URL="http://mail.test:1080/").test_client()
    thought = "Mondays & <dance> with 100% more coffee, and then some more"
    panel = what_happened(page_for(client, ThoughtForm(client).submit(thought=thought)))

    # The first 40 characters, URL-encoded (and then HTML-escaped, which leaves these alone).
    search = "Mondays%20%26%20%3Cdance%3E%20with%20100%25%20more%20coffee%2C"
    assert f'href="http://mail.test:1080/#search={search}"' in panel


def what_happened(page: str) -> str:
    return re.search(r'<section id="what-happened".*?</section>', page, re.S).group(0)


def test_the_page_shows_how_long_the_job_waited_for_a_worker(thought_form, client, run_jobs, redis):
    response = thought_form.submit()
    assert 'id="queue-wait">not started yet<' in page_for(client, response)
    time.sleep(0.3)  # the job waits in the queue at least this long
    run_jobs()

    page = page_for(client, response)
    waited = re.search(r'id="queue-wait">(\d+ ms|\d+\.\d\d s)<', page)
    assert waited, page
    number, unit = waited.group(1).split()
    assert float(number) * (1000 if unit == "s" else 1) >= 300
    submission_id = response.headers["Location"].rsplit("/", 1)[-1]
    api = client.get(f"/api/thoughts/{submission_id}").get_json()
    assert api["queue_wait"] == waited.group(1)


def test_pages_and_answers_that_show_an_address_are_not_cached(client, thought_form):
    location = thought_form.submit(email="ada@example.com").headers["Location"]
    page = client.get(location)
    api = client.get(location.replace("/thoughts/", "/api/thoughts/"))
    assert page.status_code == api.status_code == 200
    assert page.headers["Cache-Control"] == api.headers["Cache-Control"] == "no-store"
    with client.get("/static/style.css") as static:
        assert "no-store" not in static.headers.get("Cache-Control", "")


def test_the_session_cookie_can_be_made_secure(make_app):
    client = make_app(SESSION_COOKIE_SECURE=True).test_client()
    cookie = client.get("/").headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
