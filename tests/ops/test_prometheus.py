"""A real Prometheus (Debian's binary) scraping the real app, with real workers and
the SMTP sink: the totals it stores are the emails sent, and with the workers gone
the mail queue's latency rises and ops/prometheus/alerts.yml's alert goes pending."""

import subprocess
from datetime import UTC, datetime, timedelta

import pytest
import requests
import yaml

from app import submissions
from harness.polling import wait_for
from harness.ports import free_port
from tests.ops.test_alerting import PROMETHEUS, tool

pytestmark = pytest.mark.slow

N = 5
ADA = "ada@example.com"


@pytest.fixture
def prometheus(tmp_path, live_app):
    """Prometheus scraping live_app every second and evaluating the project's rules
    every second; yields its base URL."""
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(PROMETHEUS / "alerts.yml")],
        "scrape_configs": [
            {
                "job_name": "workit",
                "static_configs": [{"targets": [live_app.removeprefix("http://")]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    command = [
        tool("prometheus"),
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(base), 30, "Prometheus to be ready")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def _ready(base: str) -> bool:
    try:
        return requests.get(f"{base}/-/ready", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def query(base: str, expression: str) -> float | None:
    answer = requests.get(f"{base}/api/v1/query", params={"query": expression}, timeout=10)
    result = answer.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def alert_state(base: str, name: str) -> str | None:
    alerts = requests.get(f"{base}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    return next((a["state"] for a in alerts if a["labels"]["alertname"] == name), None)


def post(live_app: str, n: int) -> str:
    body = {"email": f"reader{n}@example.com", "thought": f"thought {n}"}
    answer = requests.post(f"{live_app}/api/thoughts", json=body, timeout=10)
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def test_prometheus_sees_what_was_sent_and_mail_growing_late(
    app, live_app, prometheus, rq_workers, smtp_sink, redis
):
    rq_workers.start(1)
    for n in range(N):
        post(live_app, n)
    smtp_sink.wait_for(N)
    sent = 'sum(workit_jobs_total{outcome="sent"})'
    wait_for(lambda: query(prometheus, sent) == N, 30, f"Prometheus to store {N} sent")
    assert query(prometheus, 'workit_queue_latency_seconds{queue="mailers"}') == 0

    rq_workers.stop_all()
    waiting = [post(live_app, n) for n in range(N, N + 3)]
    latency = 'workit_queue_latency_seconds{queue="mailers"}'
    first = wait_for(lambda: query(prometheus, latency) or None, 30, "a latency above 0")
    wait_for(lambda: query(prometheus, latency) > first, 30, "the latency to rise")
    assert query(prometheus, 'workit_queue_depth{queue="mailers"}') == 3

    # The alert waits for 60 s of latency: the oldest job says it has waited two minutes.
    job_id = submissions.load(redis, waiting[0]).job_id
    two_minutes_ago = datetime.now(UTC) - timedelta(minutes=2)
    redis.hset(f"rq:job:{job_id}", "enqueued_at", two_minutes_ago.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    wait_for(
        lambda: alert_state(prometheus, "MailQueueLate") == "pending", 30, "MailQueueLate pending"
    )
    assert query(prometheus, sent) == N  # nothing more was sent
