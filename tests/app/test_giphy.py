import pytest

from app import giphy as giphy_client
from app import submissions


@pytest.fixture
def keyed_app(app):
    app.config["GIPHY_API_KEY"] = "test-key"
    app.config["GIPHY_TIMEOUT_SECONDS"] = 0.5
    return app


def test_translate_is_called_with_key_and_thought(keyed_app, giphy):
    body = giphy.answer("translate_200.json")
    with keyed_app.app_context():
        gif = giphy_client.find_gif("Mondays & coffee")

    [request] = giphy.requests()
    assert request.args["api_key"] == "test-key"
    assert request.args["s"] == "Mondays & coffee"
    assert gif.source == "giphy"
    assert gif.url == body["data"]["images"]["fixed_height"]["url"]


def test_giphy_gif_is_linked_in_the_email(keyed_app, giphy, client, run_jobs, smtp_sink, redis):
    body = giphy.answer("translate_200.json")
    response = client.post("/api/thoughts", json={"email": "ada@example.com", "thought": "hi"})

    run_jobs()

    [message] = smtp_sink.messages
    html = message.get_body(("html",)).get_content()
    assert body["data"]["images"]["fixed_height"]["url"].replace("&", "&amp;") in html
    assert not [p for p in message.walk() if p.get_content_type() == "image/gif"]
    stored = submissions.load(redis, response.get_json()["id"])
    assert (stored.gif_source, stored.gif_note) == ("giphy", "")


@pytest.mark.parametrize(
    ("fixture", "status", "reason"),
    [
        ("error_401.json", 401, "HTTP 401"),
        ("error_429.json", 429, "HTTP 429"),
        ("translate_no_match.json", 200, "no GIF matched"),
    ],
)
def test_giphy_errors_fall_back_to_the_offline_set_and_say_so(
    keyed_app, giphy, client, run_jobs, smtp_sink, redis, fixture, status, reason
):
    giphy.answer(fixture, status=status)
    response = client.post("/api/thoughts", json={"email": "ada@example.com", "thought": "hi"})

    run_jobs()

    [message] = smtp_sink.messages
    assert [p for p in message.walk() if p.get_content_type() == "image/gif"]
    stored = submissions.load(redis, response.get_json()["id"])
    assert stored.gif_source == "offline"
    assert reason in stored.gif_note
    assert "test-key" not in stored.gif_note


def test_a_hanging_giphy_times_out_and_the_email_still_goes(keyed_app, giphy, smtp_sink):
    giphy.hang(seconds=3)
    with keyed_app.app_context():
        gif = giphy_client.find_gif("slow")
    assert gif.source == "offline"
    assert gif.note == "Giphy unavailable (timed out); used the offline set"


def test_no_key_means_no_request_and_an_offline_gif(app, giphy):
    with app.app_context():
        gif = giphy_client.find_gif("anything")
    assert giphy.requests() == []
    assert gif.source == "offline" and gif.data.startswith(b"GIF89a")


def test_offline_choice_is_deterministic_and_spread_over_the_set():
    files = giphy_client.offline_files()
    assert len(files) >= 8
    same = giphy_client.offline_gif("same thought")
    assert giphy_client.offline_gif("same thought").url == same.url
    chosen = {giphy_client.offline_gif(f"thought {n}").url for n in range(200)}
    assert len(chosen) == len(files)
