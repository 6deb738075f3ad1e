"""Soak: many submissions through the API while workers are killed and mail is dropped.

2,000 thoughts are POSTed to the real app; 4 real `rq worker` processes (the
Procfile's command) deliver them while a chaos loop SIGKILLs a random worker,
work horse included, every few seconds and starts a new one, and the SMTP sink
hangs up on 10% of messages. The stuck-submission sweep runs every 5 s (by hand,
as `flask requeue-stuck` would). At the end it reports accepted, emails caught,
duplicates and losses. The bar: 0 lost, and duplicates only from a kill that
landed between the SMTP server's "250 OK" and the `sent` flag (see README).

    .venv/bin/python bench/soak.py [--submissions 2000] [--workers 4] [--kill-every 3]
"""

import argparse
import collections
import contextlib
import logging
import os
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.parser import BytesHeaderParser
from pathlib import Path

import port_for
import psutil
import requests
from aiosmtpd.controller import Controller
from honcho.environ import parse_procfile
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from app import config, create_app, submissions  # noqa: E402
from bench.servers import redis_server  # noqa: E402
from jobs.sweeper import requeue_stuck_submissions  # noqa: E402

WORKER_COMMAND = parse_procfile((ROOT / "Procfile").read_text()).processes["worker"]


class FlakySink:
    """Accepts mail, but hangs up mid-DATA on a share of messages."""

    def __init__(self, drop_rate: float) -> None:
        self.drop_rate, self.dropped = drop_rate, 0
        self.by_submission: collections.Counter[str] = collections.Counter()

    async def handle_DATA(self, server, session, envelope) -> str:
        if random.random() < self.drop_rate:
            self.dropped += 1
            server.transport.abort()
            return "421 dropped"
        headers = BytesHeaderParser().parsebytes(envelope.content)
        self.by_submission[headers["Message-ID"].strip("<>").split("@")[0]] += 1
        return "250 OK"


class Workers:
    def __init__(self, env: dict[str, str]) -> None:
        self.env, self.procs, self.kills = env, [], 0

    def start(self) -> None:
        self.procs.append(
            subprocess.Popen(
                WORKER_COMMAND,
                shell=True,
                cwd=ROOT,
                env=self.env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    def kill_one(self) -> None:
        victim = self.procs.pop(random.randrange(len(self.procs)))
        parent = psutil.Process(victim.pid)
        for proc in [*parent.children(recursive=True), parent]:
            with contextlib.suppress(psutil.NoSuchProcess):  # a horse may finish first
                proc.kill()
        victim.wait()
        self.kills += 1
        self.start()

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=30)


def post_all(base_url: str, count: int) -> list[str]:
    def post(n: int) -> str | None:
        body = {"email": f"user{n}@example.com", "thought": f"soak thought {n}"}
        response = requests.post(f"{base_url}/api/thoughts", json=body, timeout=30)
        return response.json()["id"] if response.status_code == 202 else None

    with ThreadPoolExecutor(max_workers=4) as pool:
        return [i for i in pool.map(post, range(count)) if i]


def settled(redis, ids: list[str]) -> collections.Counter:
    return collections.Counter(submissions.load(redis, i).status for i in ids)


def soak_settings(redis_url: str, smtp_port: int) -> dict:
    return config.load(
        {
            "REDIS_URL": redis_url,
            "MAIL_PORT": str(smtp_port),
            "MAILER_DELAY_SECONDS": "0",
            "MAIL_TIMEOUT_SECONDS": "2",
            "GIPHY_TIMEOUT_SECONDS": "1",
            "RETRY_BASE_SECONDS": "1",
            "RETRY_MAX": "10",
            "RATELIMIT_ENABLED": "false",
        }
    )


def worker_env(settings: dict) -> dict[str, str]:
    env = {**os.environ, **{k: str(v) for k, v in settings.items() if v is not None}}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    return env


def drive(app, base_url: str, workers: Workers, args) -> tuple[list[str], float]:
    """Post everything, and keep killing and sweeping until every submission settled."""
    started = last_kill = last_sweep = time.monotonic()
    posting = ThreadPoolExecutor(max_workers=1).submit(post_all, base_url, args.submissions)
    while True:
        time.sleep(0.5)
        now = time.monotonic()
        if now - last_kill >= args.kill_every:
            workers.kill_one()
            last_kill = now
        if now - last_sweep >= 5:
            with app.app_context():
                requeue_stuck_submissions()
            last_sweep = now
        if posting.done():
            states = settled(app.extensions["redis"], posting.result())
            if states["sent"] + states["failed"] == len(posting.result()):
                return posting.result(), now - started
            if now - started > args.max_seconds:
                print("gave up waiting:", dict(states))
                return posting.result(), now - started


def run(args) -> None:
    sink = FlakySink(args.drop_rate)
    smtp = Controller(sink, hostname="127.0.0.1", port=port_for.select_random())
    smtp.start()
    try:
        with redis_server() as redis_url:
            settings = soak_settings(redis_url, smtp.port)
            app = create_app(settings)
            workers = Workers(worker_env(settings))
            server = make_server("127.0.0.1", port_for.select_random(), app, threaded=True)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            try:
                for _ in range(args.workers):
                    workers.start()
                ids, elapsed = drive(app, f"http://127.0.0.1:{server.server_port}", workers, args)
            finally:
                workers.stop()
                server.shutdown()
            states = settled(app.extensions["redis"], ids)
            report(ids, sink, states, workers.kills, elapsed, args)
    finally:
        smtp.stop()


def report(ids, sink, states, kills, elapsed, args) -> None:
    delivered = [i for i in ids if sink.by_submission[i] >= 1]
    duplicates = sum(sink.by_submission[i] - 1 for i in delivered)
    lost = [i for i in ids if sink.by_submission[i] == 0]
    print(f"submissions posted:   {args.submissions}")
    print(f"accepted (202):       {len(ids)}")
    print(f"emails caught:        {sum(sink.by_submission.values())}")
    print(f"delivered (unique):   {len(delivered)}")
    print(f"duplicates:           {duplicates}")
    print(f"lost:                 {len(lost)}")
    print(f"final states:         {dict(states)}")
    print(f"workers killed:       {kills}")
    print(f"connections dropped:  {sink.dropped}")
    print(f"wall time:            {elapsed:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--kill-every", type=float, default=3.0)
    parser.add_argument("--drop-rate", type=float, default=0.10)
    parser.add_argument("--max-seconds", type=float, default=900)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("jobs").setLevel(logging.ERROR)
    logging.getLogger("app").setLevel(logging.ERROR)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
