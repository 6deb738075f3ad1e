"""What a replica and WAIT cost: the POST's req/s and the worker's jobs/s on one
Redis, beside the same on a primary with one replica behind Sentinel, where every
accepted submission and every `sent` flag waits for the replica (REDIS_WAIT_REPLICAS=1).

Both setups run side by side on 127.0.0.1, every node with its append-only file
synced on every write (as compose runs Redis), and the rounds alternate between
them so both meet the same machine. The web is compose's gunicorn command (as in
bench/handoff.py), loaded at 16 connections with the throttle off; the workers are
the Procfile's pool of 4 with the provider delay off (as in bench/worker_throughput.py).
Prints each side's rate per round, the median, and the replicated side's ratio to
one Redis.

    .venv/bin/python bench/replication.py [--rounds 3] [--jobs 1000] [--quick]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import port_for

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from app.redis_connection import connect  # noqa: E402
from bench.handoff import POST, gunicorn_command, load, wait_until_serving  # noqa: E402
from bench.workers import pool_command, run_workers, settings  # noqa: E402
from harness.redis_server import RedisServer  # noqa: E402
from harness.sentinel import FailoverSet  # noqa: E402
from harness.smtp_sink import SmtpSink  # noqa: E402

WORKERS = 4
CONNECTIONS = 16
SIDES = ("one Redis", "1 replica + WAIT")


def web(env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    port = port_for.select_random()
    server = subprocess.Popen(gunicorn_command(None, port), cwd=ROOT, env=env)
    wait_until_serving(port)
    return server, port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=2.5, help="of POSTs per side per round")
    parser.add_argument("--quick", action="store_true", help="one tiny round (tests)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.jobs, args.seconds = 1, 20, 0.3
    with (
        tempfile.TemporaryDirectory(prefix="bench-replication-") as tmp,
        RedisServer(appendfsync="always") as single,
        FailoverSet(Path(tmp), replicas=1) as replicated,
        SmtpSink(keep=False) as sink,
    ):
        envs = {
            SIDES[0]: settings(single.url, sink.port),
            SIDES[1]: settings(replicated.url, sink.port, REDIS_WAIT_REPLICAS=1),
        }
        pids = {SIDES[0]: single.pid, SIDES[1]: replicated.primary().pid}
        posts, jobs = measure(envs, pids, sink, args)
    print(table(posts, jobs, args))
    return 0


def measure(envs, pids, sink, args) -> tuple[dict, dict]:
    posts: dict[str, list[float]] = {side: [] for side in SIDES}
    jobs: dict[str, list[float]] = {side: [] for side in SIDES}
    path = str(Path(sys.executable).parent)
    servers = {side: web({**env, "PATH": path}) for side, env in envs.items()}
    try:
        for _, port in servers.values():
            load(port, POST, args.seconds / 4, CONNECTIONS)  # warm up, not counted
        for _ in range(args.rounds):
            for side, (_, port) in servers.items():
                run = load(port, POST, args.seconds, CONNECTIONS)
                if set(run["statuses"]) != {202}:
                    sys.exit(f"{side}: POST answered {run['statuses']}")
                posts[side].append(run["n"] / run["seconds"])
            for side, env in envs.items():
                with connect(env["REDIS_URL"]) as redis:
                    redis.flushdb()  # the POSTs' jobs: the pool is timed on its own
                command = pool_command(WORKERS, env["REDIS_URL"])
                run = run_workers(command, env, pids[side], sink, args.jobs, WORKERS)
                jobs[side].append(run.rate)
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait(timeout=30)
    return posts, jobs


def table(posts: dict, jobs: dict, args) -> str:
    lines = [
        f"{args.rounds} alternating rounds: POST /api/thoughts at {CONNECTIONS} connections "
        f"for {args.seconds} s, then {args.jobs} email jobs through a pool of {WORKERS}",
        f"{'':<18} {'POST req/s (each round)':<34} {'x one':>6}   "
        f"{'jobs/s (each round)':<30} {'x one':>6}",
    ]
    base_post, base_jobs = statistics.median(posts[SIDES[0]]), statistics.median(jobs[SIDES[0]])
    for side in SIDES:
        post, job = statistics.median(posts[side]), statistics.median(jobs[side])
        each_post = " ".join(f"{r:.0f}" for r in posts[side])
        each_job = " ".join(f"{r:.0f}" for r in jobs[side])
        lines.append(
            f"{side:<18} {post:6.0f} [{each_post}]".ljust(53)
            + f" {post / base_post:6.2f}   {job:6.0f} [{each_job}]".ljust(40)
            + f" {job / base_jobs:6.2f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
