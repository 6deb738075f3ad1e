"""End to end: submissions POSTed to the compose web server, sent by the default workers.

Everything is real and on 127.0.0.1: Redis with `appendfsync always` (as compose
runs it), gunicorn with compose's worker settings serving the app, the Procfile's
worker pool with 4 workers, and an aiosmtpd sink that notes when each email
arrived and for whom. Four client threads POST to `/api/thoughts` as fast as the
server answers, each with its own recipient, with the provider delay off.

It reports the time from the first POST to the last email, and each email's delay
from the end of its POST to its arrival (p50, p99, max); every submission must
arrive exactly once, or the run fails.

    .venv/bin/python bench/end_to_end.py [--submissions 1000] [--rounds 3] [--quick]
"""

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import port_for
from aiosmtpd.controller import Controller
from redis import Redis
from rq import Worker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import plots  # noqa: E402
from bench.handoff import gunicorn_command, wait_until_serving  # noqa: E402
from bench.servers import redis_process  # noqa: E402
from bench.workers import ROOT, _wait, pool_command, settings  # noqa: E402

WORKERS = 4
CLIENTS = 4


class ArrivalSink:
    """Notes each email's recipient and arrival time."""

    def __init__(self) -> None:
        self.arrived: dict[str, list[float]] = {}
        self.count = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        for rcpt in envelope.rcpt_tos:
            self.arrived.setdefault(rcpt, []).append(time.perf_counter())
        self.count += 1
        return "250 OK"


def post_all(port: int, count: int) -> dict[str, float]:
    """POST ``count`` submissions from CLIENTS threads; returns when each POST ended,
    by recipient."""
    answered: dict[str, float] = {}
    numbers = iter(range(count))
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/json"}
        while True:
            with lock:
                n = next(numbers, None)
            if n is None:
                break
            address = f"reader{n}@example.com"
            body = json.dumps({"email": address, "thought": f"thought number {n}"})
            conn.request("POST", "/api/thoughts", body, headers)
            response = conn.getresponse()
            response.read()
            if response.status != 202:
                raise RuntimeError(f"POST answered {response.status}")
            answered[address] = time.perf_counter()
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answered


def one_round(count: int) -> dict:
    sink, smtp_port = ArrivalSink(), port_for.select_random()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    web_port = port_for.select_random()
    with redis_process("always") as redis:
        env = {**os.environ, **settings(redis.url, smtp_port), "WORKIT_DELIVERY": "later"}
        web = subprocess.Popen(gunicorn_command(None, web_port), cwd=ROOT, env=env)
        workers = subprocess.Popen(
            pool_command(WORKERS, redis.url), cwd=ROOT, env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_until_serving(web_port)
            client = Redis.from_url(redis.url)
            _wait(lambda: len(Worker.all(connection=client)) >= WORKERS, 60, "workers")
            started = time.perf_counter()
            answered = post_all(web_port, count)
            _wait(lambda: sink.count >= count, 600, "every email")
            time.sleep(0.5)  # a late duplicate would show here
        finally:
            web.terminate()
            os.killpg(workers.pid, signal.SIGKILL)
            web.wait(timeout=30)
            workers.wait(timeout=30)
            controller.stop()
    return summarise(started, answered, sink.arrived, count)


def summarise(started: float, answered: dict, arrived: dict, count: int) -> dict:
    copies = [len(arrived.get(address, [])) for address in answered]
    if len(answered) != count or any(n != 1 for n in copies) or len(arrived) != count:
        raise RuntimeError(
            f"not exactly once: {len(answered)} accepted, {len(arrived)} recipients got mail, "
            f"{sum(n > 1 for n in copies)} got duplicates, {copies.count(0)} got none"
        )
    delays = sorted(1000 * (arrived[a][0] - answered[a]) for a in answered)
    last = max(times[0] for times in arrived.values())
    return {
        "seconds": last - started,
        "post_seconds": max(answered.values()) - started,
        "p50": _percentile(delays, 0.50),
        "p99": _percentile(delays, 0.99),
        "max": delays[-1],
        "delays": delays,
    }


def _percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(share * len(values)))]


def table(runs: list[dict], count: int) -> str:
    def cell(key: str, fmt: str) -> str:
        values = [run[key] for run in runs]
        median = statistics.median(values)
        return f"{median:{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"

    rate = [count / run["seconds"] for run in runs]
    lines = [
        f"{count} submissions POSTed by {CLIENTS} clients to gunicorn (compose's settings), "
        f"sent by `jobs.pool` with {WORKERS} workers; Redis `appendfsync always`; "
        f"median (range) over {len(runs)} rounds; every email arrived exactly once.",
        "",
        "| measure | result |",
        "| --- | --- |",
        f"| first POST to last email | {cell('seconds', '.2f')} s |",
        f"| emails per second, end to end | {statistics.median(rate):.0f} |",
        f"| all POSTs answered after | {cell('post_seconds', '.2f')} s |",
        f"| delay from POST to email, p50 | {cell('p50', '.0f')} ms |",
        f"| delay from POST to email, p99 | {cell('p99', '.0f')} ms |",
        f"| delay from POST to email, max | {cell('max', '.0f')} ms |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one tiny round (tests)")
    parser.add_argument("--plot", help="also draw the delays of the median round into this PNG")
    args = parser.parse_args(argv)
    if args.quick:
        args.submissions, args.rounds = 20, 1
    runs = [one_round(args.submissions) for _ in range(args.rounds)]
    print(table(runs, args.submissions))
    if args.plot:
        median = sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]
        plots.delays(median["delays"], args.plot)


if __name__ == "__main__":
    main()
