"""How throughput grows with workers when the provider is slow, as real ones are.

The simulated provider delay is 1 s per email (MAILER_DELAY_SECONDS=1), so a job
is mostly waiting and the CPU is not the limit. The default setup, one pool
(jobs/runtime/pool.py) of N worker processes, sends 4 x N emails for N = 1, 2, 4, 8.
Efficiency is the rate with N workers over N times the rate with one: 100 % is
perfect scaling. Rounds alternate the sizes.

    .venv/bin/python bench/scaling.py [--rounds 2] [--quick]
"""

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import plots  # noqa: E402
from bench.workers import pool_command, run_workers, settings  # noqa: E402
from harness.redis_server import RedisServer  # noqa: E402
from harness.smtp_sink import SmtpSink  # noqa: E402

SIZES = (1, 2, 4, 8)
JOBS_PER_WORKER = 4
DELAY_SECONDS = 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="one tiny round (tests)")
    parser.add_argument("--plot", help="also draw the curve into this PNG")
    args = parser.parse_args(argv)
    sizes, per_worker, delay = SIZES, JOBS_PER_WORKER, DELAY_SECONDS
    if args.quick:
        args.rounds, sizes, per_worker, delay = 1, (1, 2), 2, 0.1
    rates: dict[int, list[float]] = {n: [] for n in sizes}
    with RedisServer(appendfsync="always") as redis, SmtpSink(keep=False) as sink:
        env = settings(redis.url, sink.port, MAILER_DELAY_SECONDS=delay)
        for _ in range(args.rounds):
            for n in sizes:
                count = per_worker * n
                command = pool_command(n, redis.url)
                run = run_workers(command, env, redis.pid, sink, count, n, late=True)
                rates[n].append(run.rate)
    print(table(rates, delay, per_worker, args.rounds))
    if args.plot:
        plots.scaling(rates, delay, args.plot)


def table(rates: dict[int, list[float]], delay: float, per_worker: int, rounds: int) -> str:
    one = statistics.median(rates[min(rates)])
    lines = [
        f"Provider delay {delay:g} s per email; {per_worker} emails per worker; "
        f"{rounds} alternating rounds.",
        "",
        f"{'workers':>7} {'emails/s':>9} {'range':>11} {'efficiency':>11}",
    ]
    for n, values in rates.items():
        rate = statistics.median(values)
        spread = f"{min(values):.2f}-{max(values):.2f}"
        lines.append(f"{n:>7} {rate:>9.2f} {spread:>11} {rate / (n * one):>11.0%}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
