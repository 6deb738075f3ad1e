"""What handing a thought to a job costs a production web server, next to doing nothing.

Runs docker-compose.yml's web command (gunicorn, its worker class and counts) on
127.0.0.1, against a private Redis whose append-only file is synced on every
write (as compose runs it), and loads two pages in turn at 16 connections: a
bare Flask page served by the same app in the same processes (same hooks, no
work), and POST /api/thoughts, each to a different recipient, with the throttle
off. Rounds alternate, so both pages meet the same machine. Prints requests per
second, the POST's ratio to the bare page, and the 99th percentile latency.
No worker runs: the jobs stay queued, and the bench checks there is one per 202.

    .venv/bin/python bench/handoff.py                     the compose config
    .venv/bin/python bench/handoff.py --config sync:5 --config gthread:2x8
    .venv/bin/python bench/handoff.py --quick             a tiny run (tests use it)

The load comes from threads, one persistent http.client connection each.
"""

import argparse
import http.client
import itertools
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml
from rq import Queue

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from app.ops.redis_connection import connect  # noqa: E402
from harness.ports import free_port  # noqa: E402
from harness.redis_server import RedisServer  # noqa: E402
from jobs import MAILERS  # noqa: E402

BARE = ("GET", "/bench/bare")
POST = ("POST", "/api/thoughts")
_recipients = itertools.count()  # next() is atomic under the GIL: one address per POST


def bench_app():
    """The real app (create_app) plus one bare page: the gunicorn target of this bench."""
    from app import create_app

    app = create_app()
    app.add_url_rule("/bench/bare", "bench_bare", lambda: "ok")
    return app


def compose_command() -> list[str]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["web"]["command"]


def gunicorn_command(config: str | None, port: int) -> list[str]:
    """The compose web command, bound to 127.0.0.1:``port`` instead of compose's
    0.0.0.0:5000, serving bench_app; ``config`` like "sync:5" or "gthread:2x8" replaces
    its worker class, workers and threads."""
    args = without_bind(compose_command()[1:-1])
    if config:
        worker_class, _, counts = config.partition(":")
        workers, _, threads = counts.partition("x")
        args = ["--worker-class", worker_class, "--workers", workers, "--threads", threads or "1"]
    args += ["--bind", f"127.0.0.1:{port}", "--no-control-socket", "--log-level", "warning"]
    return [str(Path(sys.executable).parent / "gunicorn"), *args, "bench.handoff:bench_app()"]


def without_bind(args: list[str]) -> list[str]:
    """gunicorn binds every --bind given, so compose's own must go."""
    kept, skip = [], False
    for arg in args:
        if not skip and arg != "--bind":
            kept.append(arg)
        skip = arg == "--bind"
    return kept


def describe(command: list[str]) -> str:
    value = {flag: command[i + 1] for i, flag in enumerate(command) if flag.startswith("--")}
    return f"{value['--worker-class']} {value['--workers']}x{value.get('--threads', '1')}"


def request(conn: http.client.HTTPConnection, page: tuple[str, str]) -> int:
    method, path = page
    body, headers = None, {}
    if method == "POST":
        address = f"bench{next(_recipients)}@example.com"
        body = json.dumps({"email": address, "thought": "Mondays, but make it dance"})
        headers = {"Content-Type": "application/json"}
    conn.request(method, path, body, headers)
    response = conn.getresponse()
    response.read()
    return response.status


def load(port: int, page: tuple[str, str], seconds: float, connections: int) -> dict:
    """``connections`` threads, each sending ``page`` until the time is up."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start, lock = threading.Barrier(connections + 1), threading.Lock()

    def client() -> None:
        conn, mine, codes = http.client.HTTPConnection("127.0.0.1", port, timeout=30), [], []
        start.wait()
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            codes.append(request(conn, page))
            mine.append(time.perf_counter() - began)
        conn.close()
        with lock:
            latencies.extend(mine)
            for code in codes:
                statuses[code] = statuses.get(code, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for thread in threads:
        thread.start()
    deadline = time.perf_counter() + seconds
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return {
        "n": len(latencies),
        "seconds": time.perf_counter() - began,
        "latencies": latencies,
        "statuses": statuses,
    }


def run_config(config: str | None, redis_url: str, args: argparse.Namespace) -> dict:
    port = free_port()
    command = gunicorn_command(config, port)
    env = {
        "REDIS_URL": redis_url,
        "RATELIMIT_ENABLED": "false",
        "SECRET_KEY": "bench",
        "WORKIT_DELIVERY": "later",
        "PATH": str(Path(sys.executable).parent),
    }
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        wait_until_serving(port)
        for page in (BARE, POST):
            load(port, page, args.seconds / 4, args.connections)  # warm up, not counted
        with connect(redis_url) as redis:
            redis.flushdb()  # the warm-up's jobs
        results = {BARE: [], POST: []}
        for _ in range(args.rounds):
            for page in (BARE, POST):
                results[page].append(load(port, page, args.seconds, args.connections))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"name": describe(command), **results}


def wait_until_serving(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            request(http.client.HTTPConnection("127.0.0.1", port, timeout=2), BARE)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered)) - 1))]


def report(result: dict) -> list[str]:
    """One line per page: req/s over all rounds, each round's, ratio to bare, p50, p99."""
    rate = {}
    lines = []
    for page in (BARE, POST):
        runs = result[page]
        rate[page] = sum(r["n"] for r in runs) / sum(r["seconds"] for r in runs)
        rounds = " ".join(f"{r['n'] / r['seconds']:6.0f}" for r in runs)
        latencies = [x for r in runs for x in r["latencies"]]
        p50, p99 = (percentile(latencies, s) * 1000 for s in (0.5, 0.99))
        lines.append(
            f"{result['name']:<12} {' '.join(page):<20} {rate[page]:7.0f}  [{rounds} ]"
            f"  {rate[page] / rate[BARE]:5.2f}  {p50:7.1f}  {p99:7.1f}"
        )
    return lines


def problems(result: dict, queued: int) -> list[str]:
    """Anything that makes the figures wrong: an error status, or a 202 without a job."""
    found = []
    for page, ok in ((BARE, 200), (POST, 202)):
        codes: dict[int, int] = {}
        for run in result[page]:
            for code, count in run["statuses"].items():
                codes[code] = codes.get(code, 0) + count
        if set(codes) != {ok}:
            found.append(f"{result['name']} {' '.join(page)}: statuses {codes}")
    accepted = sum(run["statuses"].get(202, 0) for run in result[POST])
    if queued != accepted:
        found.append(f"{result['name']}: {accepted} POSTs accepted, {queued} jobs queued")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", help="e.g. sync:5 or gthread:2x8")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.5, help="per page per round")
    parser.add_argument("--quick", action="store_true", help="a tiny run that checks it works")
    args = parser.parse_args(argv)
    if args.quick:
        args.connections, args.rounds, args.seconds = 2, 1, 0.3
    print(
        f"{args.connections} connections, {args.rounds} rounds of {args.seconds} s per page, "
        "Redis appendfsync always, rate limits off"
    )
    print(f"{'config':<12} {'page':<20} {'req/s':>7}  [each round]  x bare   p50 ms   p99 ms")
    found = []
    for config in args.config or [None]:  # None: docker-compose.yml's own
        with RedisServer(appendfsync="always") as redis:
            result = run_config(config, redis.url, args)
            found += problems(result, queued_jobs(redis.url))
        print("\n".join(report(result)), flush=True)
    for problem in found:
        print(f"PROBLEM {problem}")
    return 1 if found else 0


def queued_jobs(redis_url: str) -> int:
    with connect(redis_url) as redis:
        return Queue(MAILERS, connection=redis).count


if __name__ == "__main__":
    sys.exit(main())
