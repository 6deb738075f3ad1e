import pytest

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


def test_get_reports_status_timestamps_attempts_and_gif(client, run_jobs):
    submission_id = post(client, {"email": "ada@example.com", "thought": "Tea"}).get_json()["id"]
    before = client.get(f"/api/thoughts/{submission_id}").get_json()
    assert (before["status"], before["attempts"], before["gif"]) == ("queued", 0, None)

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
    response = client.get("/api/thoughts/nope")
    assert response.status_code == 404
    assert response.get_json() == {"error": "No thought with that id."}
