"""The server's own time, shown on every page and sent in a Server-Timing header."""

import re
import time

import pytest
from flask import render_template_string

from app import timing

FOOTER = re.compile(r'id="server-time"[^>]*>Served in (\d+\.\d) ms<')
HEADER = re.compile(r"^app;dur=(\d+\.\d)$")


def served_ms(page: str) -> float:
    return float(FOOTER.search(page).group(1))


def header_ms(response) -> float:
    return float(HEADER.match(response.headers["Server-Timing"]).group(1))


def test_every_html_page_shows_how_long_the_server_took(client, thought_form):
    submission_page = thought_form.submit().headers["Location"]
    for path, status in (("/", 200), (submission_page, 200), ("/thoughts/nope", 404)):
        response = client.get(path)
        assert response.status_code == status
        assert served_ms(response.get_data(as_text=True)) >= 0


def test_every_response_html_or_json_carries_a_server_timing_header(client):
    responses = [
        client.get("/"),
        client.get("/api/thoughts/nope"),
        client.post("/api/thoughts", json={"email": "ada@example.com", "thought": "Tea"}),
        client.post("/api/thoughts", data="x"),  # refused (415) by the API's own hook
    ]
    assert [r.status_code for r in responses] == [200, 404, 202, 415]
    for response in responses:
        assert header_ms(response) >= 0


def test_the_numbers_are_this_requests_own_time(make_app):
    app = make_app()

    @app.get("/slow")
    def slow():
        time.sleep(1)  # far above what a page takes on a machine busy with make test's -n
        return render_template_string('{% extends "base.html" %}')

    client = app.test_client()
    response = client.get("/slow")
    assert served_ms(response.get_data(as_text=True)) >= 1000
    assert header_ms(response) >= served_ms(response.get_data(as_text=True))
    assert header_ms(client.get("/")) < 1000  # the clock starts again for each request


def test_now_mode_shows_the_slow_mailer_in_the_api_s_timing(make_app):
    client = make_app(WORKIT_DELIVERY="now", MAILER_DELAY_SECONDS=0.3).test_client()
    response = client.post("/api/thoughts", json={"email": "ada@example.com", "thought": "Tea"})
    assert response.status_code == 202
    assert header_ms(response) >= 300


@pytest.mark.parametrize(
    ("start", "stamp", "label"),
    [
        ("2024-05-01T10:00:00.000+00:00", "2024-05-01T10:00:00.000+00:00", "+0 ms"),
        ("2024-05-01T10:00:00.000+00:00", "2024-05-01T10:00:00.004+00:00", "+4 ms"),
        ("2024-05-01T10:00:00.000+00:00", "2024-05-01T10:00:05.020+00:00", "+5.02 s"),
        ("2024-05-01T10:00:00.010+00:00", "2024-05-01T10:00:00.000+00:00", "-10 ms"),
    ],
)
def test_offsets_read_at_a_glance(start, stamp, label):
    assert timing.offset(start, stamp) == label
