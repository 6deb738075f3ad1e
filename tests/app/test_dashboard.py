import base64

import pytest
from rq.registry import FailedJobRegistry

from app import submissions
from app.thoughts import accept

CREDENTIALS = {"Authorization": "Basic " + base64.b64encode(b"admin:s3cret").decode()}


@pytest.fixture
def dashboard_app(make_app):
    return make_app(DASHBOARD_PASSWORD="s3cret")


def test_the_dashboard_is_off_without_a_password(client):
    assert client.get("/rq/").status_code == 404


def test_the_dashboard_asks_for_credentials(dashboard_app):
    client = dashboard_app.test_client()
    response = client.get("/rq/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    wrong = {"Authorization": "Basic " + base64.b64encode(b"admin:guess").decode()}
    assert client.get("/rq/", headers=wrong).status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/rq/7/view/queues"),
        ("GET", "/rq/1/view/workers"),
        ("GET", "/rq/3/view/jobs"),
        ("POST", "/rq/job/x/requeue"),
    ],
)
def test_a_stranger_gets_401_from_every_page_before_anything_runs(dashboard_app, method, path):
    assert dashboard_app.test_client().open(path, method=method).status_code == 401


def test_failed_sign_ins_are_limited(dashboard_app):
    client = dashboard_app.test_client()
    wrong = {"Authorization": "Basic " + base64.b64encode(b"admin:guess").decode()}
    assert [client.get("/rq/", headers=wrong).status_code for _ in range(10)] == [401] * 10
    assert client.get("/rq/", headers=wrong).status_code == 429
    assert client.get("/rq/", headers=CREDENTIALS).status_code == 429  # for the rest of the minute


def test_signed_in_it_lists_the_queues(dashboard_app):
    client = dashboard_app.test_client()
    with dashboard_app.test_request_context():
        accept("ada@example.com", "queued for the dashboard")

    queues = client.get("/rq/0/data/queues.json", headers=CREDENTIALS).get_json()["queues"]

    assert {"name": "mailers", "count": 1} in [
        {"name": q["name"], "count": q["count"]} for q in queues
    ]


def test_requeueing_a_dead_job_from_the_dashboard_delivers_once(
    dashboard_app, run_jobs, smtp_sink, redis
):
    smtp_sink.rcpt_replies["ada@example.com"] = ["550 5.1.1 No such user"]
    with dashboard_app.test_request_context():
        submission_id = accept("ada@example.com", "dead on arrival").id
    run_jobs()
    job_id = submissions.load(redis, submission_id).job_id
    assert FailedJobRegistry("mailers", connection=redis).get_job_ids() == [job_id]

    headers = {**CREDENTIALS, "Sec-Fetch-Site": "same-origin"}
    response = dashboard_app.test_client().post(f"/rq/job/{job_id}/requeue", headers=headers)
    assert response.status_code == 200
    run_jobs()

    assert len(smtp_sink.sent_to("ada@example.com")) == 1
    assert submissions.load(redis, submission_id).status == "sent"


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_another_site_cannot_drive_the_dashboard(dashboard_app, redis, site):
    client = dashboard_app.test_client()
    headers = {**CREDENTIALS, "Sec-Fetch-Site": site}

    assert client.post("/rq/queue/mailers/queued/empty", headers=headers).status_code == 403
    assert client.get("/rq/requeue/mailers", headers=headers).status_code == 403
