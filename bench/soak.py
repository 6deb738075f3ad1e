"""Soak: many submissions through the API while workers die, mail misbehaves and
Redis crashes.

2,000 thoughts are POSTed to the real app; 4 copies of the Procfile's worker
command (each a pool of worker processes, jobs/runtime/pool.py) deliver them with a
0.2 s mailer, so kills land mid-send. Meanwhile a chaos loop SIGKILLs one of
them, its whole pool, every few seconds and starts a new one (and revives any
that quit by itself); the SMTP sink hangs up at RCPT on 5% of sessions (before
the message: retried), hangs up on QUIT after accepting 5% of messages (must
count as sent), and never answers 1% of messages (must be `unconfirmed`, not
resent); and Redis is SIGKILLed once and restarted on its append-only file.
With --failover, Redis is a primary, two replicas and three sentinels
(harness/sentinel.py) on a redis+sentinel:// REDIS_URL with REDIS_WAIT_REPLICAS=1,
and the crash is the primary's: a replica is promoted, the old primary rejoins.
The stuck-submission sweep runs on its real interval (every 60 s).

At the end it reports accepted, emails caught, duplicates and losses, and sorts
each duplicate by the window it came through. The bar: 0 lost, and duplicates
only from a worker killed between the server's acceptance and the `sent` write.

    .venv/bin/python bench/soak.py [--submissions 2000] [--workers 4] [--kill-every 3]
    .venv/bin/python bench/soak.py --failover
"""

import argparse
import collections
import contextlib
import logging
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.parser import BytesHeaderParser
from pathlib import Path

import requests
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from app import config, create_app, submissions  # noqa: E402
from bench.workers import settings  # noqa: E402
from harness.faulty_smtp_sink import FaultySmtpSink  # noqa: E402
from harness.ports import free_port  # noqa: E402
from harness.redis_server import RedisServer  # noqa: E402
from harness.sentinel import FailoverSet  # noqa: E402
from harness.worker_processes import WorkerProcesses, process_env  # noqa: E402
from jobs.sweeper import INTERVAL_SECONDS, requeue_stuck_submissions  # noqa: E402

SMTP_TIMEOUT_SECONDS = 2


class FlakySink(FaultySmtpSink):
    """Notes when each submission's email was accepted, and misbehaves by chance at the
    three points that matter: before the message, after it without an answer, and
    after the answer."""

    def __init__(self, rates: dict[str, float]) -> None:
        super().__init__(keep=False)
        self.rates = rates
        self.faults: collections.Counter[str] = collections.Counter()
        self.accepted_at: dict[str, list[float]] = collections.defaultdict(list)

    def _roll(self, fault: str) -> bool:
        if random.random() < self.rates[fault]:
            self.faults[fault] += 1
            return True
        return False

    def drops_at_rcpt(self, address: str) -> bool:
        return self._roll("drop at RCPT")

    def record(self, envelope) -> None:
        super().record(envelope)
        headers = BytesHeaderParser().parsebytes(envelope.content)
        submission_id = headers["Message-ID"].strip("<>").split("@")[0]
        self.accepted_at[submission_id].append(time.monotonic())

    def answer_delay_for(self, session) -> float:
        """Once per message kept: answer it never (past the client's timeout), and
        hang up on the QUIT after it."""
        session.hang_up_on_quit = self._roll("drop on QUIT")
        return SMTP_TIMEOUT_SECONDS + 1 if self._roll("no answer") else 0

    def hangs_up_on_quit(self, session) -> bool:
        return getattr(session, "hang_up_on_quit", False)

    def copies(self, submission_id: str) -> int:
        return len(self.accepted_at.get(submission_id, ()))


class ChaosWorkers(WorkerProcesses):
    """The Procfile's workers (each a pool of its default size), that the soak kills
    at random and that a supervisor would restart."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env, workers=None, quiet=True)
        self.killed_at: list[float] = []
        self.revived = 0

    def kill_one(self) -> None:
        index = random.randrange(len(self.procs))
        self.kill(index)
        del self.procs[index]
        self.killed_at.append(time.monotonic())
        self.start(timeout=None)

    def revive(self) -> None:
        """Start a new worker for each that quit by itself (as a supervisor would)."""
        for proc in [p for p in self.procs if p.poll() is not None]:
            self.procs.remove(proc)
            self.revived += 1
            self.start(timeout=None)


def post_all(base_url: str, count: int) -> list[str]:
    def post(n: int) -> str | None:
        body = {"email": f"user{n}@example.com", "thought": f"soak thought {n}"}
        response = requests.post(f"{base_url}/api/thoughts", json=body, timeout=30)
        return response.json()["id"] if response.status_code == 202 else None

    with ThreadPoolExecutor(max_workers=4) as pool:
        return [i for i in pool.map(post, range(count)) if i]


def settled(redis, ids: list[str]) -> collections.Counter:
    return collections.Counter(submissions.load(redis, i).status for i in ids)


def soak_settings(redis_url: str, smtp_port: int, wait_replicas: int = 0) -> dict:
    return config.load(
        settings(
            redis_url,
            smtp_port,
            REDIS_WAIT_REPLICAS=wait_replicas,
            MAILER_DELAY_SECONDS=0.2,
            MAIL_TIMEOUT_SECONDS=SMTP_TIMEOUT_SECONDS,
            GIPHY_TIMEOUT_SECONDS=1,
            RETRY_BASE_SECONDS=1,
            RETRY_MAX=10,
        )
    )


def drive(app, base_url: str, workers: ChaosWorkers, redis, args) -> tuple[list[str], float]:
    """Post everything, and keep killing and sweeping until every submission settled."""
    started = last_kill = last_sweep = time.monotonic()
    posting = ThreadPoolExecutor(max_workers=1).submit(post_all, base_url, args.submissions)
    crashed = False
    while True:
        time.sleep(0.5)
        now = time.monotonic()
        workers.revive()
        if now - last_kill >= args.kill_every:
            workers.kill_one()
            last_kill = now
        if not crashed and now - started >= args.redis_crash_after:
            redis.fail_over() if args.failover else redis.crash_and_restart()
            crashed = True
        if now - last_sweep >= INTERVAL_SECONDS:
            with contextlib.suppress(Exception), app.app_context():
                requeue_stuck_submissions()
            last_sweep = now
        if posting.done():
            states = settled(app.extensions["redis"], posting.result())
            if sum(states[s] for s in submissions.FINAL) == len(posting.result()):
                return posting.result(), now - started
            if now - started > args.max_seconds:
                print("gave up waiting:", dict(states))
                return posting.result(), now - started


def run(args) -> None:
    sink = FlakySink(
        {"drop at RCPT": args.drop_rate, "drop on QUIT": args.quit_rate, "no answer": 0.01}
    )
    with sink, redis_for(args) as redis:
        settings = soak_settings(redis.url, sink.port, wait_replicas=1 if args.failover else 0)
        app = create_app(settings)
        server = make_server("127.0.0.1", free_port(), app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with ChaosWorkers(process_env(settings)) as workers:
            try:
                workers.start(args.workers, timeout=None)
                base_url = f"http://127.0.0.1:{server.server_port}"
                ids, elapsed = drive(app, base_url, workers, redis, args)
            finally:
                server.shutdown()
        states = settled(app.extensions["redis"], ids)
        report(ids, sink, states, workers, elapsed, args)


def redis_for(args) -> RedisServer | FailoverSet:
    return FailoverSet() if args.failover else RedisServer(appendfsync="always")


def windows(ids, sink: FlakySink, killed_at: list[float]) -> collections.Counter:
    """Each extra copy, by the window it came through: a worker killed after the server
    accepted the first copy, while its run could still be waiting for the answer or
    writing `sent` (at most the SMTP timeout, and a second), or not."""
    found: collections.Counter[str] = collections.Counter()
    reach = SMTP_TIMEOUT_SECONDS + 1.0
    for i in ids:
        first, *extra = sorted(sink.accepted_at.get(i, ())) or [0.0]
        if extra:
            killed_after = any(first <= k <= first + reach for k in killed_at)
            found["worker killed after acceptance" if killed_after else "unexplained"] += len(extra)
    return found


def report(ids, sink, states, workers, elapsed, args) -> None:
    delivered = [i for i in ids if sink.copies(i) >= 1]
    lost = [i for i in ids if sink.copies(i) == 0]
    print(f"submissions posted:   {args.submissions}")
    print(f"accepted (202):       {len(ids)}")
    print(f"emails caught:        {sum(sink.copies(i) for i in ids)} (and alerts to the admin)")
    print(f"delivered (unique):   {len(delivered)}")
    print(f"duplicates:           {sum(sink.copies(i) - 1 for i in delivered)}")
    for window, count in sorted(windows(ids, sink, workers.killed_at).items()):
        print(f"  {window + ':':31s} {count}")
    print(f"lost:                 {len(lost)}")
    print(f"unconfirmed:          {states['unconfirmed']} (delivered once or not at all)")
    print(f"final states:         {dict(states)}")
    print(f"workers killed:       {len(workers.killed_at)} (and {workers.revived} revived)")
    print(f"sink faults:          {dict(sink.faults)}")
    if args.failover:
        print("redis failed over:    1 (the primary SIGKILLed, a replica promoted, it rejoined)")
    else:
        print("redis crashed:        1 (SIGKILL, restarted on its append-only file)")
    print(f"wall time:            {elapsed:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--kill-every", type=float, default=3.0)
    parser.add_argument("--drop-rate", type=float, default=0.05)
    parser.add_argument("--quit-rate", type=float, default=0.05)
    parser.add_argument("--redis-crash-after", type=float, default=20)
    parser.add_argument("--max-seconds", type=float, default=900)
    parser.add_argument("--failover", action="store_true", help="Redis behind Sentinel")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("jobs").setLevel(logging.ERROR)
    logging.getLogger("app").setLevel(logging.ERROR)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
