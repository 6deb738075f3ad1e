import pytest

from app.submissions import new_id
from harness.ports import free_port


@pytest.fixture
def app_without_redis(make_app):
    """The app pointed at a port where no Redis listens."""
    return make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")


def test_form_post_with_redis_down_is_503_keeps_input_and_explains(app_without_redis):
    client = app_without_redis.test_client()
    page = client.get("/").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]

    response = client.post("/", data={"csrf_token": token, "email": "a@b.co", "thought": "hi"})

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    text = response.get_data(as_text=True)
    assert "cannot reach its job queue" in text
    assert 'value="hi"' in text
    assert "Traceback" not in text


def test_api_with_redis_down_is_503_json(app_without_redis):
    client = app_without_redis.test_client()

    response = client.post("/api/thoughts", json={"email": "a@b.co", "thought": "hi"})

    assert response.status_code == 503
    assert "cannot reach its job queue" in response.get_json()["error"]
    assert client.get(f"/api/thoughts/{new_id()}").status_code == 503


def test_status_page_with_redis_down_is_a_plain_503(app_without_redis):
    response = app_without_redis.test_client().get(f"/thoughts/{new_id()}")
    assert response.status_code == 503
    assert "Temporarily unavailable" in response.get_data(as_text=True)


def test_unknown_route_is_404_html_and_json(client):
    assert "Not found" in client.get("/nowhere").get_data(as_text=True)
    assert client.get("/api/nowhere").get_json()["error"]


def test_wrong_method_is_405_not_500(client):
    assert client.delete("/").status_code == 405


def test_an_error_keeps_its_headers_html_and_json(client):
    """A 405 says which methods would do, in HTML and under /api alike."""
    allowed = client.delete("/").headers["Allow"]
    assert set(allowed.split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}
    response = client.put("/api/thoughts")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}
    assert response.headers["Content-Type"] == "application/json"
