"""Hostile input (issue 21): every bad request gets a clear 4xx, never a 500.

JSON under /api, an HTML error page elsewhere, and nothing stored on the way.
"""

import io
import logging

import pytest

from app import config, keys, submissions

API = "/api/thoughts"
GOOD = {"email": "ada@example.com", "thought": "Tea"}


@pytest.fixture
def no_tracebacks(caplog):
    """Flask logs every unhandled exception ("Exception on ..."): a 4xx logs none."""
    caplog.set_level(logging.ERROR)
    yield
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


def post_raw(client, body: str | bytes):
    return client.post(API, data=body, content_type="application/json")


# -- ids: only the exact shape of submissions.new_id() reaches Redis -------------------


def test_every_new_id_has_the_shape_the_routes_accept():
    ids = {submissions.new_id() for _ in range(2000)}
    assert all(submissions.is_id(submission_id) for submission_id in ids)


@pytest.mark.parametrize(
    "bad",
    [
        "nope",
        "A" * 21,  # one short
        "A" * 23,  # one long
        "A" * 21 + "B",  # 128 bits end in A, Q, g or w: B carries bits that are not there
        "A" * 21 + "=",
        "A" * 20 + "*A",
        "A" * 22 + "\n",
    ],
)
def test_ids_of_another_shape_are_refused(bad):
    assert not submissions.is_id(bad)


@pytest.mark.parametrize("prefix", ["/api/thoughts/", "/thoughts/"])
@pytest.mark.parametrize("suffix", [":journey", ":lock", ":x", "%00", "%0a"])
def test_an_id_that_names_another_key_is_404_not_500(client, redis, no_tracebacks, prefix, suffix):
    submission_id = client.post(API, json=GOOD).get_json()["id"]
    redis.set(keys.lock(submission_id), "held")  # a string key, as a job's lock
    response = client.get(f"{prefix}{submission_id}{suffix}")
    assert response.status_code == 404
    if prefix.startswith("/api"):
        assert response.get_json()["error"]
    else:
        assert "Not found" in response.get_data(as_text=True)


@pytest.mark.parametrize("prefix", ["/api/thoughts/", "/thoughts/"])
def test_a_well_shaped_unknown_id_is_404(client, redis, prefix):
    assert client.get(f"{prefix}{submissions.new_id()}").status_code == 404


# -- JSON bodies: strings Redis cannot store, nesting the parser cannot survive --------


@pytest.mark.parametrize(
    "body",
    [
        '{"email": "ada@example.com", "thought": "\\ud800"}',  # a lone surrogate, escaped
        '{"email": "ada@example.com", "thought": "tea \\udfff"}',
        '{"email": "ada@example.com", "thought": "Tea", "\\ud800": 1}',  # in a key
        b'{"email": "ada@example.com", "thought": "\xed\xa0\x80"}',  # encoded as bytes
    ],
)
def test_a_lone_surrogate_is_400_json(client, redis, no_tracebacks, body):
    response = post_raw(client, body)
    assert response.status_code == 400
    assert "surrogate" in response.get_json()["error"]
    assert redis.keys("workit:*") == []


def test_a_proper_surrogate_pair_is_a_character_like_any_other(client, redis):
    body = '{"email": "ada@example.com", "thought": "Tea \\ud83c\\udf75"}'
    response = post_raw(client, body)
    assert response.status_code == 202
    submission = submissions.load(redis, response.get_json()["id"])
    assert submission.thought == "Tea \N{TEACUP WITHOUT HANDLE}"


@pytest.mark.parametrize(
    "body",
    [
        "[" * 1000 + "]" * 1000,
        '{"a":' * 1000 + "1" + "}" * 1000,
        '{"email": "ada@example.com", "thought": "Tea", "x": ' + "[" * 1000 + "]" * 1000 + "}",
        "[" * 60_000,  # never closed
    ],
)
def test_json_nested_deep_is_400_json(client, redis, no_tracebacks, body):
    response = post_raw(client, body)
    assert response.status_code == 400
    assert "nested" in response.get_json()["error"]
    assert redis.keys("workit:*") == []


def test_brackets_inside_strings_are_not_nesting(client, redis):
    response = post_raw(client, '{"email": "ada@example.com", "thought": "[[[[[[[[[[[[{{{{\\""}')
    assert response.status_code == 202


# -- size: a body over MAX_CONTENT_LENGTH is refused before it is read -----------------

LIMIT = 64 * 1024  # MAX_CONTENT_LENGTH's default: the form is a few hundred bytes
THOUGHT_PREFIX = '{"email": "ada@example.com", "thought": "'


def json_of_size(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes (its thought far too long to accept)."""
    return f'{THOUGHT_PREFIX}{"x" * (size - len(THOUGHT_PREFIX) - 2)}"}}'.encode()


def test_a_json_body_over_the_limit_is_413_json(client, redis, no_tracebacks):
    response = post_raw(client, json_of_size(LIMIT + 1))
    assert response.status_code == 413
    assert response.get_json()["error"]
    assert redis.keys("workit:*") == []
    assert post_raw(client, json_of_size(LIMIT)).status_code == 422  # read, then refused


def test_a_chunked_json_body_over_the_limit_is_413_json(client, redis, no_tracebacks):
    """No Content-Length to refuse up front: reading stops at the limit."""
    response = client.post(
        API,
        input_stream=io.BytesIO(json_of_size(LIMIT + 1)),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert redis.keys("workit:*") == []


def test_a_form_post_over_the_limit_is_413_html(client, thought_form, redis, no_tracebacks):
    response = thought_form.submit(thought="x" * LIMIT)
    assert response.status_code == 413
    assert "413 Request Entity Too Large" in response.get_data(as_text=True)
    assert redis.keys("workit:*") == []


def test_the_limit_is_read_from_the_environment(make_app, redis):
    limit = config.load({"MAX_CONTENT_LENGTH": "100"})["MAX_CONTENT_LENGTH"]
    client = make_app(MAX_CONTENT_LENGTH=limit).test_client()
    assert post_raw(client, json_of_size(101)).status_code == 413


# -- Host: only the names the app is served under (DNS rebinding) ----------------------


@pytest.mark.parametrize("host", ["rebind.example", "rebind.example:5000", "127.0.0.2", "evil"])
def test_a_page_under_another_host_name_is_400_html(client, no_tracebacks, host):
    response = client.get("/", headers={"Host": host})
    assert response.status_code == 400
    assert "not trusted" in response.get_data(as_text=True)


def test_the_api_under_another_host_name_is_400_json_and_stores_nothing(client, redis):
    response = client.post(API, json=GOOD, headers={"Host": "rebind.example:5000"})
    assert response.status_code == 400
    assert "not trusted" in response.get_json()["error"]
    assert "Location" not in response.headers
    assert redis.keys("workit:*") == []


def test_a_status_cannot_be_read_under_another_host_name(client, redis):
    submission_id = client.post(API, json=GOOD).get_json()["id"]
    for path in (f"/api/thoughts/{submission_id}", f"/thoughts/{submission_id}"):
        assert client.get(path, headers={"Host": "rebind.example"}).status_code == 400


@pytest.mark.parametrize("host", ["localhost", "localhost:5000", "127.0.0.1", "127.0.0.1:5001"])
def test_the_default_names_are_served_on_any_port(client, redis, host):
    response = client.post(API, json=GOOD, headers={"Host": host})
    assert response.status_code == 202
    assert response.headers["Location"].startswith(f"http://{host}/api/thoughts/")


def test_the_names_are_a_setting(make_app, redis):
    hosts = config.load({"TRUSTED_HOSTS": "work-it.example, .work-it.test"})["TRUSTED_HOSTS"]
    client = make_app(TRUSTED_HOSTS=hosts).test_client()
    assert client.get("/", headers={"Host": "work-it.example"}).status_code == 200
    assert client.get("/", headers={"Host": "www.work-it.test"}).status_code == 200
    assert client.get("/", headers={"Host": "localhost"}).status_code == 400


# -- framing: no other site may frame the app's pages (clickjacking) -------------------


@pytest.mark.parametrize("path", ["/", "/nowhere", "/api/nowhere", "/healthz", "/static/style.css"])
def test_every_response_forbids_framing(client, redis, path):
    response = client.get(path)
    response.close()  # a static file is streamed
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_the_dashboards_pages_and_refusals_forbid_framing_too(make_app):
    client = make_app(DASHBOARD_PASSWORD="s3cret").test_client()
    response = client.get("/rq/")
    assert response.status_code == 401
    assert response.headers["X-Frame-Options"] == "DENY"


def test_a_policy_already_set_is_kept_and_extended(app, client):
    @app.get("/with-a-policy")
    def with_a_policy():
        return "x", {"Content-Security-Policy": "default-src 'self'"}

    policy = client.get("/with-a-policy").headers.getlist("Content-Security-Policy")
    assert policy == ["default-src 'self'; frame-ancestors 'none'"]
