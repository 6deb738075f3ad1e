"""Two setups side by side, in alternating rounds so both meet the same machine: the
POST's req/s under compose's web command (gunicorn, as bench/handoff.py runs it, with
the throttle off) and the Procfile's pool's jobs/s (as bench/worker_throughput.py,
the provider delay off). Used by bench/replication.py and bench/metrics_cost.py.
"""

import argparse
import statistics
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from app.ops.redis_connection import connect  # noqa: E402
from bench.handoff import POST, gunicorn_command, load, wait_until_serving  # noqa: E402
from bench.workers import pool_command, run_workers  # noqa: E402
from harness.ports import free_port  # noqa: E402

WORKERS = 4
CONNECTIONS = 16


def arguments(doc: str, argv: list[str] | None) -> argparse.Namespace:
    """Both benches' options: rounds, jobs per round, seconds of POSTs, --quick."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=2.5, help="of POSTs per side per round")
    parser.add_argument("--quick", action="store_true", help="one tiny round (tests)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.jobs, args.seconds = 1, 20, 0.3
    return args


class Side(NamedTuple):
    name: str
    env: dict[str, str]  # bench.workers.settings, plus what makes this side
    redis_pid: int  # whose CPU the worker runs report


def measure(sides: list[Side], sink, rounds: int, jobs: int, seconds: float) -> tuple:
    """Per side: the POST's req/s and the pool's jobs/s, one figure per round each."""
    posts: dict[str, list[float]] = {side.name: [] for side in sides}
    rates: dict[str, list[float]] = {side.name: [] for side in sides}
    path = str(Path(sys.executable).parent)
    servers = {side.name: _web({**side.env, "PATH": path}) for side in sides}
    try:
        for _, port in servers.values():
            load(port, POST, seconds / 4, CONNECTIONS)  # warm up, not counted
        for _ in range(rounds):
            for side in sides:
                run = load(servers[side.name][1], POST, seconds, CONNECTIONS)
                if set(run["statuses"]) != {202}:
                    sys.exit(f"{side.name}: POST answered {run['statuses']}")
                posts[side.name].append(run["n"] / run["seconds"])
            for side in sides:
                with connect(side.env["REDIS_URL"]) as redis:
                    redis.flushdb()  # the POSTs' jobs: the pool is timed on its own
                command = pool_command(WORKERS, side.env["REDIS_URL"])
                run = run_workers(command, side.env, side.redis_pid, sink, jobs, WORKERS)
                rates[side.name].append(run.rate)
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait(timeout=30)
    return posts, rates


def _web(env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server = subprocess.Popen(gunicorn_command(None, port), cwd=ROOT, env=env)
    wait_until_serving(port)
    return server, port


def table(posts: dict, rates: dict, rounds: int, jobs: int, seconds: float) -> str:
    """Each side's median over the rounds, each round's figure, and its ratio to the first."""
    first = next(iter(posts))
    lines = [
        f"{rounds} alternating rounds: POST /api/thoughts at {CONNECTIONS} connections "
        f"for {seconds} s, then {jobs} email jobs through a pool of {WORKERS}",
        f"{'':<18} {'POST req/s (each round)':<34} {'ratio':>6}   "
        f"{'jobs/s (each round)':<30} {'ratio':>6}",
    ]
    base_post, base_jobs = statistics.median(posts[first]), statistics.median(rates[first])
    for name in posts:
        post, job = statistics.median(posts[name]), statistics.median(rates[name])
        each_post = " ".join(f"{r:.0f}" for r in posts[name])
        each_job = " ".join(f"{r:.0f}" for r in rates[name])
        lines.append(
            f"{name:<18} {post:6.0f} [{each_post}]".ljust(53)
            + f" {post / base_post:6.2f}   {job:6.0f} [{each_job}]".ljust(40)
            + f" {job / base_jobs:6.2f}"
        )
    return "\n".join(lines)
