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
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import plots  # noqa: E402
from bench.handoff import gunicorn_command, wait_until_serving  # noqa: E402
from bench.workers import ROOT, pool_command, settings  # noqa: E402
from harness.polling import wait_for  # noqa: E402
from harness.ports import free_port  # noqa: E402
from harness.redis_server import RedisServer  # noqa: E402
from harness.smtp_sink import SmtpSink  # noqa: E402
from harness.worker_processes import WorkerProcesses, process_env  # noqa: E402

WORKERS = 4
CLIENTS = 4


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
    web_port = free_port()
    with RedisServer(appendfsync="always") as redis, SmtpSink(keep=False) as sink:
        env = process_env({**settings(redis.url, sink.port), "WORKIT_DELIVERY": "later"})
        web = subprocess.Popen(gunicorn_command(None, web_port), cwd=ROOT, env=env)
        workers = WorkerProcesses(env, pool_command(WORKERS, redis.url), WORKERS, quiet=True)
        try:
            workers.start(1)
            wait_until_serving(web_port)
            started = time.perf_counter()
            answered = post_all(web_port, count)
            wait_for(lambda: sink.count >= count, 600, "every email")
            time.sleep(0.5)  # a late duplicate would show here
        finally:
            web.terminate()
            workers.stop_all(signal.SIGKILL)
            web.wait(timeout=30)
    return summarise(started, answered, sink.arrivals(), count)


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
        f"sent by `jobs.runtime.pool` with {WORKERS} workers; Redis `appendfsync always`; "
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
