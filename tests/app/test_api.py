import pytest

from app import keys
from app.submissions import FINAL, new_id
from harness.submissions import submit
from tests.app.test_forms import INVALID


def post(client, body, **kwargs):
    return client.post("/api/thoughts", json=body, **kwargs)


def test_post_answers_202_with_id_status_and_url(client, redis):
    response = post(client, {"email": "ada@example.com", "thought": "Tea time"})

    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "queued"
    assert body["url"] == f"http://localhost/api/thoughts/{body['id']}"
    assert response.headers["Location"] == body["url"]
    assert redis.llen("rq:queue:mailers") == 1


def test_get_reports_status_timestamps_attempts_and_gif(client, redis, run_jobs):
    submission_id = post(client, {"email": "ada@example.com", "thought": "Tea"}).get_json()["id"]
    before = client.get(f"/api/thoughts/{submission_id}").get_json()
    assert (before["status"], before["attempts"], before["gif"]) == ("queued", 0, None)
    assert redis.exists(f"rq:job:{before['job_id']}")  # the id RQ knows the job by

    run_jobs()

    after = client.get(f"/api/thoughts/{submission_id}").get_json()
    assert (after["status"], after["attempts"]) == ("sent", 1)
    assert after["gif"]["source"] == "offline"
    assert after["gif"]["url"].endswith(".gif")
    assert after["created_at"] <= after["sent_at"]
    assert "email" not in after  # the id alone does not reveal the address


@pytest.mark.parametrize(("email", "thought", "field", "message"), INVALID)
def test_invalid_input_is_422_with_errors_per_field(client, redis, email, thought, field, message):
    response = post(client, {"email": email, "thought": thought})

    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert any(message in text for text in errors[field])
    assert redis.keys("workit:*") == []


def test_missing_and_non_string_fields_are_422(client):
    response = post(client, {"email": 42})
    errors = response.get_json()["errors"]
    assert response.status_code == 422
    assert set(errors) == {"email", "thought"}


@pytest.mark.parametrize("body", ["[1, 2]", "not json", '"a string"'])
def test_a_body_that_is_not_a_json_object_is_400(client, body):
    response = client.post("/api/thoughts", data=body, content_type="application/json")
    assert response.status_code == 400
    assert "JSON object" in response.get_json()["error"]


def test_a_form_encoded_post_is_415(client, redis):
    response = client.post("/api/thoughts", data={"email": "ada@example.com", "thought": "x"})
    assert response.status_code == 415
    assert redis.keys("workit:*") == []


def test_unknown_id_is_404_json(client):
    response = client.get(f"/api/thoughts/{new_id()}")
    assert response.status_code == 404
    assert response.get_json() == {"error": "No thought with that id."}


def test_an_id_of_another_shape_is_404_json_before_redis(client):
    response = client.get("/api/thoughts/nope")
    assert response.status_code == 404
    assert response.get_json()["error"]


def test_get_includes_the_journey_with_times_and_never_the_address(client, run_jobs, redis):
    submission_id = post(client, {"email": "ada@example.com", "thought": "Tea"}).get_json()["id"]
    run_jobs()

    response = client.get(f"/api/thoughts/{submission_id}")
    journey = response.get_json()["journey"]
    assert [step["event"] for step in journey] == ["accepted", "enqueued", "started", "sent"]
    assert journey[0]["at"] == response.get_json()["created_at"]
    assert journey[0]["since_accepted"] == "+0 ms"
    assert all(set(step) == {"at", "event", "detail", "since_accepted"} for step in journey)
    assert journey[3]["detail"] == "the mail server accepted it (GIF: offline)"
    assert "ada@example.com" not in response.get_data(as_text=True)


def test_now_mode_answers_with_the_status_the_delivery_left(make_app, smtp_sink):
    client = make_app(WORKIT_DELIVERY="now").test_client()
    response = post(client, {"email": "ada@example.com", "thought": "Tea"})
    assert (response.status_code, response.get_json()["status"]) == (202, "sent")
    assert len(smtp_sink.messages) == 1


def test_now_mode_that_fails_answers_queued_with_a_retry_enqueued(make_app, smtp_sink, redis):
    client = make_app(WORKIT_DELIVERY="now").test_client()
    smtp_sink.stop()

    body = post(client, {"email": "ada@example.com", "thought": "Tea"}).get_json()

    assert body["status"] == "queued"
    assert redis.llen("rq:queue:mailers") == 1
    journey = client.get(body["url"]).get_json()["journey"]
    assert [step["event"] for step in journey][-2:] == ["attempt failed", "enqueued"]
    assert journey[-2]["detail"].startswith("attempt 1 failed (a retry is coming): transient:")


def test_a_mail_server_error_quoting_the_address_is_masked(client, run_jobs, smtp_sink):
    smtp_sink.rcpt_replies["ada@example.com"] = ["550 No such user"]
    body = post(client, {"email": "ada@example.com", "thought": "Tea"}).get_json()
    run_jobs()

    response = client.get(body["url"])
    assert response.get_json()["status"] == "failed"
    assert "a***@example.com" in response.get_json()["last_error"]
    assert "a***@example.com" in response.get_json()["journey"][-1]["detail"]
    assert "ada@example.com" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("status", "final"),
    [(s, False) for s in ("scheduled", "queued", "sending")] + [(s, True) for s in FINAL],
)
def test_the_api_and_the_page_say_final_as_submissions_defines_it(
    app, client, redis, status, final
):
    """The status page stops polling on `final`: one definition (app/submissions.py)."""
    [submission_id] = submit(app)
    redis.hset(keys.submission(submission_id), "status", status)

    assert client.get(f"/api/thoughts/{submission_id}").get_json()["final"] is final
    page = client.get(f"/thoughts/{submission_id}").get_data(as_text=True)
    assert f'data-final="{str(final).lower()}"' in page
