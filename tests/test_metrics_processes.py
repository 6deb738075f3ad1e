"""/metrics counts right however many processes count: two worker pools, and
gunicorn's several web processes."""

import subprocess
import sys

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from app import ROOT
from harness.polling import wait_for
from harness.ports import free_port
from harness.submissions import submit
from harness.worker_processes import WorkerProcesses, process_env
from tests.app.ops.test_metrics import value

pytestmark = pytest.mark.slow

N = 40


def samples(text: str) -> dict[tuple, float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_two_pools_count_every_run_once(app, app_config, client, smtp_sink):
    """Two copies of the Procfile's worker line, 2 workers each, drain N jobs: the
    totals on /metrics are exact, and the workers are all there."""
    with WorkerProcesses(process_env(app_config), workers=2) as pools:
        pools.start(2)
        submit(app, count=N)
        smtp_sink.wait_for(N)

        def all_counted() -> dict | None:
            found = samples(client.get("/metrics").get_data(as_text=True))
            sent = value(found, "workit_jobs_total", queue="mailers", outcome="sent")
            return found if sent == N else None

        found = wait_for(all_counted, 30, f"{N} runs counted")
    assert value(found, "workit_job_duration_seconds_count", queue="mailers") == N
    assert (
        value(found, "workit_workers", state="idle") + value(found, "workit_workers", state="busy")
        == 4
    )
    assert value(found, "workit_queue_depth", queue="mailers") == 0


def test_gunicorns_processes_add_up(app_config, tmp_path):
    """docker-compose.yml's web command (2 processes) with PROMETHEUS_MULTIPROC_DIR:
    every request is counted once, whichever process served it and whichever answers
    the scrape. Without the multiprocess folder each scrape would see one process's."""
    port = free_port()
    env = process_env({**app_config, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")})
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "python:app.ops.gunicorn_conf",
        "--worker-class",
        "gthread",
        "--workers",
        "2",
        "--threads",
        "4",
        "--bind",
        f"127.0.0.1:{port}",
        "app:create_app()",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(base), 30, "gunicorn to serve")
        session = requests.Session()
        before = _healthz_count(session, base)
        for _ in range(N):
            session.get(f"{base}/healthz", timeout=10)
            requests.get(f"{base}/healthz", timeout=10)  # a new connection: either process
        for _ in range(5):  # each scrape, whichever process answers, sees the same total
            assert _healthz_count(requests, base) == before + 2 * N
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answers(base: str) -> bool:
    try:
        return requests.get(f"{base}/metrics", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def _healthz_count(http, base: str) -> float:
    found = samples(http.get(f"{base}/metrics", timeout=10).text)
    return sum(
        v
        for (name, labels), v in found.items()
        if name == "workit_http_requests_total" and ("endpoint", "health.healthz") in labels
    )
