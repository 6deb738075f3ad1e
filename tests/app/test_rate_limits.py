import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests


def post_api(client, email="ada@example.com", thought="hi"):
    return client.post("/api/thoughts", json={"email": email, "thought": thought})


def test_the_sixth_thought_for_one_recipient_in_a_minute_is_429(thought_form, redis):
    for n in range(5):
        assert thought_form.submit(email="ada@example.com", thought=f"t{n}").status_code == 303

    response = thought_form.submit(email="ADA@example.com ", thought="one more")

    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    page = response.get_data(as_text=True)
    assert "Too many thoughts too quickly" in page and "5 per 1 minute" in page
    assert 'value="one more"' in page  # nothing typed is lost
    assert redis.llen("rq:queue:mailers") == 5


def test_the_api_answers_429_with_retry_after_and_enqueues_nothing(client, redis):
    for _ in range(5):
        assert post_api(client).status_code == 202

    response = post_api(client)

    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "Too many thoughts" in response.get_json()["error"]
    assert redis.llen("rq:queue:mailers") == 5
    assert post_api(client, email="bob@example.com").status_code == 202  # others still fine


def test_the_per_client_limit_spans_recipients(app, client, redis):
    app.config["RATELIMIT_PER_CLIENT"] = "3 per minute"
    for n in range(3):
        assert post_api(client, email=f"user{n}@example.com").status_code == 202
    assert post_api(client, email="user9@example.com").status_code == 429


def test_the_form_and_the_api_share_one_allowance(thought_form, client):
    for _ in range(3):
        assert thought_form.submit(email="ada@example.com").status_code == 303
    for _ in range(2):
        assert post_api(client).status_code == 202
    assert post_api(client).status_code == 429
    assert thought_form.submit(email="ada@example.com").status_code == 429


def test_rejected_input_does_not_use_up_the_allowance(client):
    for _ in range(10):
        assert post_api(client, thought="").status_code == 422
    assert post_api(client).status_code == 202


def test_limits_can_be_turned_off(make_app):
    client = make_app(RATELIMIT_ENABLED=False).test_client()
    assert all(post_api(client).status_code == 202 for _ in range(8))


@pytest.mark.parametrize("limit", ["2 per minute", "2/hour", "2 per 1 day", "2/day;10/month"])
def test_limit_strings_use_flask_limiter_syntax(app, client, limit):
    """The setting is read in Flask-Limiter's syntax and applied: the default (5 per
    minute) would let the third through."""
    app.config["RATELIMIT_PER_RECIPIENT"] = limit
    assert [post_api(client).status_code for _ in range(2)] == [202, 202]

    response = post_api(client)

    assert response.status_code == 429
    assert "2 per 1" in response.get_json()["error"]


@pytest.mark.parametrize("setting", ["RATELIMIT_PER_CLIENT", "RATELIMIT_PER_RECIPIENT"])
def test_a_limit_string_with_a_typo_stops_the_app_at_start(make_app, setting):
    with pytest.raises(ValueError, match=f"{setting}='5 per minit' is not a rate limit"):
        make_app(**{setting: "5 per minit"})


def test_plus_tags_and_case_share_one_recipient_allowance(client):
    for n in range(5):
        assert post_api(client, email=f"Ada+{n}@Example.com").status_code == 202
    assert post_api(client, email="ada+other@example.com").status_code == 429
    assert post_api(client, email="ada@example.com").status_code == 429


def test_twenty_parallel_posts_for_one_recipient_accept_at_most_the_limit(live_app, redis):
    """Each accepted submission is counted in the same atomic step that checks the
    limit, so requests racing each other cannot all slip under it."""
    start = threading.Barrier(20)

    def post(_: int) -> int:
        start.wait()
        body = {"email": "ada@example.com", "thought": "me first"}
        return requests.post(f"{live_app}/api/thoughts", json=body, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(pool.map(post, range(20)))

    assert codes.count(202) == 5 and codes.count(429) == 15
    assert redis.llen("rq:queue:mailers") == 5


# One mailbox, spelled six ways: case, a +tag, full-width letters in the domain.
SPELLINGS = [
    "burst@example.com",
    "BURST@EXAMPLE.COM",
    "burst+x@example.com",
    "burst@ｅxample.com",
    "burst@ＥＸＡＭＰＬＥ.ＣＯＭ",
    "Burst+y@Ｅxample.com",
]


def test_spellings_of_one_mailbox_share_one_allowance(client, redis):
    codes = [post_api(client, email=spelling).status_code for spelling in SPELLINGS]
    assert codes == [202] * 5 + [429]


def test_the_address_is_stored_as_it_will_be_delivered(client, redis):
    for typed, stored in [
        ("burst@ＥＸＡＭＰＬＥ.com", "burst@example.com"),
        ("ada@bücher.example", "ada@xn--bcher-kva.example"),
    ]:
        submission_id = post_api(client, email=typed).get_json()["id"]
        assert redis.hget(f"workit:submission:{submission_id}", "email").decode() == stored


def test_sends_are_counted_in_the_window_they_are_due(app, client, redis):
    """A second's allowance cannot be spent twice on one due second by asking twice."""
    app.config["RATELIMIT_PER_RECIPIENT"] = "1 per second"
    due = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    later = due + timedelta(seconds=5)

    assert post_at(client, due).status_code == 202
    time.sleep(1.1)  # the acceptance window of one second is over
    refused = post_at(client, due)
    assert refused.status_code == 429
    assert "pick another time" in refused.get_json()["error"]
    time.sleep(1.1)
    assert post_at(client, later).status_code == 202
    assert redis.zcard("rq:scheduled:mailers") == 2


def post_at(client, when: datetime):
    body = {"email": "ada@example.com", "thought": "later", "send_at": when.isoformat()}
    return client.post("/api/thoughts", json=body)


def test_refusals_spend_no_one_elses_allowance(app, client):
    """A client past its own limit is refused without counting against the address it
    names: its owner can still send to it, from another address, five times."""
    app.config["RATELIMIT_PER_CLIENT"] = "2 per minute"
    for n in range(2):
        assert post_api(client, email=f"me{n}@example.com").status_code == 202
    for _ in range(10):
        assert post_api(client, email="bystander@example.com").status_code == 429

    owner = {"REMOTE_ADDR": "192.0.2.7"}
    for _ in range(2):
        response = client.post(
            "/api/thoughts",
            json={"email": "bystander@example.com", "thought": "mine"},
            environ_base=owner,
        )
        assert response.status_code == 202


def test_a_refusal_for_the_recipient_leaves_the_clients_allowance(app, client):
    app.config["RATELIMIT_PER_CLIENT"] = "7 per minute"
    for _ in range(5):
        assert post_api(client, email="ada@example.com").status_code == 202
    for _ in range(5):
        assert post_api(client, email="ada@example.com").status_code == 429
    for n in range(2):  # five refusals later, the client still has its last two
        assert post_api(client, email=f"other{n}@example.com").status_code == 202
