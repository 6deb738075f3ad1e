"""`flask doctor` against a real Redis and a real SMTP sink; Giphy faked with `responses`."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses
from rq.scheduler import RQScheduler

from app import submissions
from app.ops.metrics import LATE_MAIL_SECONDS
from harness.ports import free_port
from harness.submissions import submit
from tests.conftest import GIPHY_FIXTURES

GIPHY = "https://api.giphy.com"
TRANSLATE = f"{GIPHY}/v1/gifs/translate"
NAMES = ["redis", "replicas", "smtp", "workers", "queues", "scheduler", "cron", "giphy"]
# Giphy's 403 comes in the same envelope as its 401 (error_401.json)
FORBIDDEN = {
    "data": [],
    "meta": {"status": 403, "msg": "Forbidden", "response_id": ""},
    "message": "You are not authorized to use this API key",
}


def doctor(app) -> tuple[int, dict[str, str]]:
    """Run the command; its exit code and each check's line, by the check's name."""
    result = app.test_cli_runner().invoke(args=["doctor"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    lines = result.output.splitlines()
    assert [line.split()[1] for line in lines] == NAMES, result.output
    return result.exit_code, {line.split()[1]: line for line in lines}


@pytest.fixture
def everything_up(redis, registered_worker, schedulers, smtp_sink):
    """Redis, the SMTP sink, a live worker, RQ's scheduler and rq cron."""


@pytest.fixture
def giphy_api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_all_ok_exits_0_and_a_missing_giphy_key_is_fine(app, everything_up, giphy_api):
    code, lines = doctor(app)

    assert code == 0
    assert all(line.startswith("ok ") for line in lines.values()), lines
    assert "GIFs come from the offline set, that is fine" in lines["giphy"]
    assert f"127.0.0.1:{app.config['MAIL_PORT']}" in lines["smtp"]
    assert len(giphy_api.calls) == 0  # no key, no request


def test_no_worker_and_no_schedulers_fail_with_what_to_do(app, redis, smtp_sink):
    code, lines = doctor(app)

    assert code == 1
    assert lines["redis"].startswith("ok ") and lines["smtp"].startswith("ok ")
    assert lines["workers"].startswith("FAIL") and "make worker" in lines["workers"]
    assert lines["scheduler"].startswith("FAIL") and "retries never fire" in lines["scheduler"]
    assert lines["cron"].startswith("FAIL") and "scheduler line" in lines["cron"]


def test_redis_down_is_a_fail_line_not_a_traceback(make_app, smtp_sink):
    port = free_port()
    code, lines = doctor(make_app(REDIS_URL=f"redis://:hunter2@127.0.0.1:{port}/0"))

    assert code == 1
    assert lines["redis"].startswith(f"FAIL  redis     no answer at 127.0.0.1:{port}/0")
    assert "REDIS_URL" in lines["redis"] and "hunter2" not in lines["redis"]
    for name in ("replicas", "workers", "scheduler", "cron"):
        assert lines[name].startswith("FAIL") and "while Redis does not answer" in lines[name]


def test_one_redis_has_no_replica_to_wait_for(app, everything_up, giphy_api):
    _, lines = doctor(app)
    assert lines["replicas"].startswith("ok ") and "one Redis" in lines["replicas"]


def test_fewer_replicas_than_the_writes_wait_for_fail(make_app, everything_up, giphy_api):
    code, lines = doctor(make_app(REDIS_WAIT_REPLICAS=1))

    assert code == 1
    assert lines["replicas"].startswith("FAIL") and "0 replicas" in lines["replicas"]
    assert "fewer than REDIS_WAIT_REPLICAS=1" in lines["replicas"]
    assert "every submission is refused" in lines["replicas"]


def test_smtp_down_fails(app, everything_up, smtp_sink):
    smtp_sink.stop()

    code, lines = doctor(app)

    assert code == 1
    assert lines["smtp"].startswith("FAIL") and "MAIL_SERVER and MAIL_PORT" in lines["smtp"]
    assert [name for name, line in lines.items() if line.startswith("FAIL")] == ["smtp"]


def test_a_port_that_does_not_speak_smtp_fails_within_the_mail_timeout(
    make_app, redis_server, everything_up
):
    """Redis accepts the connection but never greets: a TCP connect alone would pass."""
    app = make_app(MAIL_PORT=redis_server.port, MAIL_TIMEOUT_SECONDS=0.3)

    code, lines = doctor(app)

    assert code == 1
    assert lines["smtp"].startswith("FAIL") and "timed out" in lines["smtp"]


@pytest.mark.parametrize(
    ("body", "status", "verdict", "words"),
    [
        ("translate_200.json", 200, "ok", "the key works"),
        ("translate_no_match.json", 200, "ok", "the key works"),
        ("error_401.json", 401, "FAIL", "Giphy refused the key (HTTP 401): check GIPHY_API_KEY"),
        (FORBIDDEN, 403, "FAIL", "Giphy refused the key (HTTP 403): check GIPHY_API_KEY"),
        ("error_429.json", 429, "FAIL", "Giphy answered HTTP 429: try later"),
    ],
)
def test_a_giphy_key_is_tried_once(
    make_app, everything_up, giphy_api, body, status, verdict, words
):
    payload = json.loads((GIPHY_FIXTURES / body).read_text()) if isinstance(body, str) else body
    giphy_api.get(TRANSLATE, json=payload, status=status)
    app = make_app(GIPHY_API_KEY="k-secret", GIPHY_API_URL=GIPHY)

    code, lines = doctor(app)

    assert lines["giphy"].startswith(verdict) and words in lines["giphy"]
    assert code == (0 if verdict == "ok" else 1)
    [call] = giphy_api.calls
    assert call.request.params["api_key"] == "k-secret"
    assert "k-secret" not in lines["giphy"]


def test_giphy_out_of_reach_fails_and_says_the_emails_still_go(make_app, everything_up, giphy_api):
    giphy_api.get(TRANSLATE, body=requests.ConnectionError("no route to host"))
    app = make_app(GIPHY_API_KEY="k-secret", GIPHY_API_URL=GIPHY)

    code, lines = doctor(app)

    assert code == 1
    assert lines["giphy"].startswith("FAIL  giphy     could not ask Giphy")
    assert "emails carry offline GIFs" in lines["giphy"]


def test_a_queue_no_scheduler_holds_is_named(app, redis, everything_up):
    redis.delete(RQScheduler.get_locking_key("maintenance"))  # as when its holder's lock expires

    code, lines = doctor(app)

    assert code == 1
    assert lines["scheduler"].startswith("FAIL  scheduler no RQ scheduler holds maintenance,")


def test_each_queue_shows_its_depth_and_late_mail_fails(app, redis, everything_up, giphy_api):
    ids = submit(app, count=2)
    code, lines = doctor(app)
    assert code == 0
    assert "mailers 2 waiting, oldest 0 s; default 0 waiting" in lines["queues"], lines["queues"]

    job_id = submissions.load(redis, ids[0]).job_id
    late = datetime.now(UTC) - timedelta(seconds=LATE_MAIL_SECONDS + 30)
    redis.hset(f"rq:job:{job_id}", "enqueued_at", late.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    code, lines = doctor(app)
    assert code == 1
    assert lines["queues"].startswith("FAIL") and "mail is late" in lines["queues"]
    assert f"oldest {LATE_MAIL_SECONDS + 30} s" in lines["queues"]
