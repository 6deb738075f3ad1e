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


def dead_job(app, smtp_sink, run_jobs, redis) -> str:
    smtp_sink.rcpt_replies["ada@example.com"] = ["550 5.1.1 No such user"]
    with app.test_request_context():
        accept("ada@example.com", "dead on arrival")
    run_jobs()
    [job_id] = FailedJobRegistry("mailers", connection=redis).get_job_ids()
    return job_id


@pytest.mark.parametrize(
    "headers",
    [
        {},  # an old browser: no Sec-Fetch-Site, no Origin (an image tag, a form)
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
    ],
    ids=["nothing", "another-origin", "opaque-origin"],
)
def test_without_its_own_origin_a_post_changes_nothing(
    dashboard_app, smtp_sink, run_jobs, redis, headers
):
    job_id = dead_job(dashboard_app, smtp_sink, run_jobs, redis)
    client = dashboard_app.test_client()
    headers = {**CREDENTIALS, **headers}

    assert client.post(f"/rq/job/{job_id}/requeue", headers=headers).status_code == 403
    assert client.post("/rq/requeue/mailers", headers=headers).status_code == 403
    assert client.post(f"/rq/job/{job_id}/delete", headers=headers).status_code == 403
    assert FailedJobRegistry("mailers", connection=redis).get_job_ids() == [job_id]


def test_a_get_never_requeues(dashboard_app, smtp_sink, run_jobs, redis):
    """rq-dashboard's requeue-all answers GET: an <img src> on any page would do it."""
    job_id = dead_job(dashboard_app, smtp_sink, run_jobs, redis)
    headers = {**CREDENTIALS, "Origin": "http://localhost"}

    assert (
        dashboard_app.test_client().get("/rq/requeue/mailers", headers=headers).status_code == 405
    )
    assert FailedJobRegistry("mailers", connection=redis).get_job_ids() == [job_id]
    response = dashboard_app.test_client().post("/rq/requeue/mailers", headers=headers)
    assert response.status_code == 200
    assert FailedJobRegistry("mailers", connection=redis).get_job_ids() == []


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


METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]
PATHS = ["/rq", "/rq/", "/rq/0/", "/rq/7/", "/rq/7/view/queues", "/rq/job/x/requeue", "/rq/nope"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", METHODS)
def test_every_method_on_every_path_needs_credentials(dashboard_app, method, path):
    """Flask-HTTPAuth's login_required lets OPTIONS through unchecked; rq-dashboard's
    own hook then failed (500) on an instance number it does not have."""
    response = dashboard_app.test_client().open(path, method=method)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "TRACE"])
def test_signed_in_a_method_the_dashboard_lacks_is_405(dashboard_app, method):
    response = dashboard_app.test_client().open("/rq/", method=method, headers=CREDENTIALS)
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]


def test_signed_in_options_is_answered(dashboard_app):
    response = dashboard_app.test_client().options("/rq/", headers=CREDENTIALS)
    assert response.status_code == 200
    assert "GET" in response.headers["Allow"]


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def from_address(address: str) -> dict[str, dict[str, str]]:
    return {"environ_base": {"REMOTE_ADDR": address}}


def fail_ten_times(client, username="admin", address="10.0.0.1") -> None:
    wrong = basic(username, "guess")
    statuses = [client.get("/rq/", headers=wrong, **from_address(address)) for _ in range(10)]
    assert [r.status_code for r in statuses] == [401] * 10


def test_wrong_passwords_are_limited_per_user_and_client(dashboard_app):
    client = dashboard_app.test_client()
    fail_ten_times(client)
    response = client.get("/rq/", headers=basic("admin", "guess"), **from_address("10.0.0.1"))
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    # Over the limit the password is not even checked: a guesser learns nothing more.
    assert client.get("/rq/", headers=CREDENTIALS, **from_address("10.0.0.1")).status_code == 429


def test_someone_elses_failures_do_not_lock_the_admin_out(dashboard_app):
    client = dashboard_app.test_client()
    fail_ten_times(client, address="10.0.0.1")  # a stranger guessing at admin
    fail_ten_times(client, username="root", address="10.0.0.2")  # behind the admin's NAT
    assert client.get("/rq/", headers=CREDENTIALS, **from_address("10.0.0.2")).status_code == 200
    assert client.get("/rq/", headers=CREDENTIALS, **from_address("10.0.0.3")).status_code == 200


def test_a_request_without_credentials_is_not_a_failed_sign_in(dashboard_app):
    """A browser asks without credentials first, and gets 401 to open its prompt."""
    client = dashboard_app.test_client()
    assert [client.get("/rq/").status_code for _ in range(30)] == [401] * 30
    assert client.get("/rq/", headers=CREDENTIALS).status_code == 200


def test_the_right_password_does_not_count(dashboard_app):
    client = dashboard_app.test_client()
    assert [client.get("/rq/", headers=CREDENTIALS).status_code for _ in range(30)] == [200] * 30
    assert client.get("/rq/", headers=basic("admin", "guess")).status_code == 401


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

    headers = {**CREDENTIALS, "Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"}
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


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/rq/7/view/queues"),  # an instance it does not have
        ("GET", "/rq/99999999999999999999/data/queues.json"),
        ("GET", "/rq/0/view/job/nope"),  # a job that does not exist
        ("GET", "/rq/0/data/job/nope.json"),
        ("GET", "/rq/0/data/job/x:dependents.json"),  # not a job id at all
        ("POST", "/rq/job/nope/requeue"),
        ("POST", "/rq/job/nope/delete"),
        ("POST", "/rq/queue/nope/compact"),  # a queue that does not exist
        ("POST", "/rq/queue/nope/failed/empty"),
        ("GET", "/rq/requeue/nope"),
        ("GET", "/rq/0/data/jobs/mailers/queued/x/asc/1.json"),  # pages that are not numbers
        ("GET", "/rq/0/data/jobs/mailers/queued/0/asc/1.json"),
        ("GET", "/rq/0/data/jobs/mailers/queued/10/asc/0.json"),
        ("GET", "/rq/0/data/jobs/mailers/queued/10/asc/99999999999999999999.json"),
        ("GET", "/rq/0/data/jobs/mailers/bogus/10/asc/1.json"),  # a registry it has not
        ("GET", "/rq/0/data/jobs/mailers/queued/10/sideways/1.json"),
    ],
)
def test_signed_in_what_is_not_there_is_404_not_500(dashboard_app, redis, method, path):
    with dashboard_app.test_request_context():
        accept("ada@example.com", "so that the mailers queue exists")
    headers = {**CREDENTIALS, "Sec-Fetch-Site": "same-origin"}
    response = dashboard_app.test_client().open(path, method=method, headers=headers)
    assert response.status_code == 404


def test_signed_in_the_pages_that_are_there_still_answer(dashboard_app, redis):
    with dashboard_app.test_request_context():
        submission_id = accept("ada@example.com", "a job to look at").id
    job_id = submissions.load(redis, submission_id).job_id
    client = dashboard_app.test_client()
    for path in (
        f"/rq/0/view/job/{job_id}",
        f"/rq/0/data/job/{job_id}.json",
        "/rq/0/data/jobs/mailers/queued/10/asc/1.json",
        "/rq/0/data/jobs/mailers/failed/10/dsc/1.json",
        "/rq/0/view/jobs/mailers/queued/10/asc/1",
    ):
        assert client.get(path, headers=CREDENTIALS).status_code == 200, path


def test_the_dashboard_keeps_one_redis_client_across_requests(dashboard_app):
    """rq-dashboard's own hook made a new client (behind Sentinel, a new Sentinel too)
    for every page with an instance number in its URL, and dropped the last one
    unclosed (issue 28's leaked sockets). The one it makes at start is used throughout."""
    client = dashboard_app.test_client()
    made_at_start = dashboard_app.redis_conn
    for path in ("/rq/0/data/queues.json", "/rq/0/data/workers.json"):
        assert client.get(path, headers=CREDENTIALS).status_code == 200
        assert dashboard_app.redis_conn is made_at_start
