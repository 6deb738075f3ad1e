"""Emails per second through one real `rq worker --burst`, by how the app is loaded.

- AppWorker (the Procfile's): the app is built once in the parent; each forked
  work horse inherits it.
- stock Worker: the same AppJob, but every forked horse builds the app anew,
  which is what a naive "create_app() inside the job" costs.
- SimpleWorker: no fork at all (fastest; a crash takes the worker with it).

    .venv/bin/python bench/worker_throughput.py
"""

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from app import config, create_app  # noqa: E402
from app.thoughts import accept  # noqa: E402
from bench.servers import redis_server, smtp_sink  # noqa: E402

VARIANTS = [
    ("AppWorker (app built once, fork per job)", "jobs.worker.AppWorker", 300),
    ("stock Worker (app built in each fork)", "rq.worker.Worker", 20),
    ("SimpleWorker (no fork)", "rq.worker.SimpleWorker", 300),
]


def enqueue(app, count: int) -> None:
    with app.test_request_context():
        for n in range(count):
            accept("ada@example.com", f"thought {n}")


def run_worker(worker_class: str, env: dict[str, str]) -> float:
    command = [
        str(Path(sys.executable).parent / "rq"),
        "worker",
        "--burst",
        "--quiet",
        "--url",
        env["REDIS_URL"],
        "--worker-class",
        worker_class,
        "--job-class",
        "jobs.worker.AppJob",
        "mailers",
    ]
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    return time.perf_counter() - started


def main() -> None:
    with redis_server() as redis_url, smtp_sink() as (sink, smtp_port):
        settings = {
            "REDIS_URL": redis_url,
            "MAIL_PORT": str(smtp_port),
            "MAILER_DELAY_SECONDS": "0",
        }
        app = create_app(config.load(settings))
        env = {**os.environ, **settings}
        for label, worker_class, count in VARIANTS:
            before = sink.count
            enqueue(app, count)
            seconds = run_worker(worker_class, env)
            sent = sink.count - before
            print(f"{label:45s} {sent:4d} emails in {seconds:6.2f} s = {sent / seconds:7.1f}/s")


if __name__ == "__main__":
    main()
