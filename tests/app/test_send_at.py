"""Scheduled sends: "send at" on the form and the API, checked, kept by RQ's scheduled
registry, and delivered by a real worker with its scheduler once the time comes."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from rq import Queue
from rq.registry import ScheduledJobRegistry

from app import submissions
from harness.polling import wait_for


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def post(client, **body):
    body = {"email": "ada@example.com", "thought": "Later", **body}
    return client.post("/api/thoughts", json=body)


def scheduled(redis) -> ScheduledJobRegistry:
    return ScheduledJobRegistry(queue=Queue("mailers", connection=redis))


def test_the_api_schedules_the_job_for_its_time(client, redis, run_jobs, smtp_sink):
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    response = post(client, send_at=iso(when).replace("+00:00", "Z"))

    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "scheduled"
    shown = client.get(f"/api/thoughts/{body['id']}").get_json()
    assert (shown["status"], shown["send_at"]) == ("scheduled", iso(when))
    assert "scheduled" in [step["event"] for step in shown["journey"]]
    assert redis.llen("rq:queue:mailers") == 0
    assert scheduled(redis).get_job_ids() == [shown["job_id"]]
    assert scheduled(redis).get_scheduled_time(shown["job_id"]) == when

    run_jobs()  # a worker now: nothing is due
    assert smtp_sink.messages == []


def test_a_time_with_an_offset_is_kept_as_the_same_moment(client, redis):
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    response = post(client, send_at=iso(when.astimezone(timezone(timedelta(hours=5, minutes=30)))))

    assert response.status_code == 202
    assert submissions.load(redis, response.get_json()["id"]).send_at == iso(when)


@pytest.mark.parametrize(
    ("send_at", "message"),
    [
        ("yesterday", "Give the time as"),
        ("2020-01-01T10:00:00Z", "That time has passed"),
        ("2020-01-01T10:00:00", "time zone"),
        pytest.param(  # a fixed id: every pytest -n worker must collect the same names
            iso(datetime.now(UTC) + timedelta(days=7, hours=1)),
            "at most 7 days ahead",
            id="in-7-days-and-1-hour-at most 7 days ahead",
        ),
        (42, "Give the time as"),
    ],
)
def test_a_bad_send_at_is_422_and_stores_nothing(client, redis, send_at, message):
    response = post(client, send_at=send_at)

    assert response.status_code == 422
    assert any(message in text for text in response.get_json()["errors"]["send_at"])
    assert redis.keys("workit:*") == []


def test_without_send_at_the_job_is_queued_at_once(client, redis):
    body = post(client).get_json()
    assert body["status"] == "queued"
    assert redis.llen("rq:queue:mailers") == 1
    assert scheduled(redis).count == 0


def test_the_form_takes_the_browsers_local_time_and_offset(thought_form, client, redis):
    when = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=3)
    local = when.astimezone(timezone(timedelta(hours=-5)))  # the browser, five hours behind UTC
    response = thought_form.submit(send_at=local.strftime("%Y-%m-%dT%H:%M"), utc_offset="-300")

    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "scheduled" in page
    assert f'datetime="{iso(when)}"' in page
    submission_id = response.headers["Location"].rsplit("/", 1)[-1]
    assert submissions.load(redis, submission_id).send_at == iso(when)


def test_the_form_shows_a_past_time_as_an_error_and_keeps_the_input(thought_form, redis):
    response = thought_form.submit(thought="keep me", send_at="2020-05-01T09:30", utc_offset="0")

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "That time has passed" in page
    assert 'value="2020-05-01T09:30"' in page and "keep me" in page
    assert redis.keys("workit:*") == []


@pytest.mark.slow
def test_a_real_worker_sends_it_once_its_time_has_come(client, rq_workers, smtp_sink, redis):
    rq_workers.start(1)
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    submission_id = post(client, send_at=iso(when)).get_json()["id"]

    [message] = smtp_sink.wait_for(1, timeout=30)
    arrived = datetime.now(UTC)
    assert arrived >= when  # never early
    assert message["To"] == "ada@example.com"
    wait_for(lambda: submissions.load(redis, submission_id).status == "sent", 10, "sent")
    events = [e["event"] for e in submissions.journey(redis, submission_id)]
    assert events.index("scheduled") < events.index("sent")
