"""Emails per second through real worker processes, against a bare smtplib loop.

Every variant sends the project's own email (the job's real path: lock, Giphy's
offline set, Flask-Mail, the `sent` flag) to an aiosmtpd sink, with the simulated
provider delay off, so CPU is the limit: this measures what a job costs.

- bare smtplib: the same message bytes, sent in a loop on one connection; the
  ceiling for any worker in Python.
- the default: `python -m jobs.runtime.pool` with 4 workers (the Procfile's, make dev's and
  compose's setup); also with 1 and 2.
- RQ's forking worker (AppWorker: the app built once, a fork per job), the setup
  before the pool.

Rounds alternate the variants, so each meets the same machine; the table shows
the median and range of each, its ratio to the bare loop, and CPU per job by part.

    .venv/bin/python bench/worker_throughput.py [--rounds 3] [--jobs 1000] [--quick]
"""

import argparse
import smtplib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app import config, create_app, giphy, mailer  # noqa: E402
from app.submissions import Submission  # noqa: E402
from bench import plots  # noqa: E402
from bench.workers import Run, forking_command, pool_command, run_workers, settings  # noqa: E402
from harness.redis_server import RedisServer  # noqa: E402
from harness.smtp_sink import SmtpSink  # noqa: E402

# label, command maker, workers it registers, share of --jobs it gets (forking is slow)
VARIANTS = [
    ("jobs.runtime.pool, 4 workers (the default)", lambda url: pool_command(4, url), 4, 1.0),
    ("jobs.runtime.pool, 1 worker", lambda url: pool_command(1, url), 1, 1.0),
    ("jobs.runtime.pool, 2 workers", lambda url: pool_command(2, url), 2, 1.0),
    ("rq worker, AppWorker (fork per job)", forking_command, 1, 0.25),
]


def bare_smtplib(env: dict[str, str], port: int, count: int) -> tuple[float, int]:
    """Emails per second, and the message's size: the project's message, as bytes, sent
    in a loop on one connection."""
    app = create_app(config.load(env))
    with app.app_context():
        submission = Submission(id="bench", email="reader@example.com", thought="a thought")
        data = mailer.build_message(submission, giphy.find_gif("a thought")).as_bytes()
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for n in range(count):
            smtp.sendmail("gifs@work-it.localhost", [f"reader{n}@example.com"], data)
    return count / (time.perf_counter() - started), len(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="one tiny round (tests)")
    parser.add_argument("--plot", help="also draw the rates into this PNG")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.jobs = 1, 20
    bare: list[float] = []
    size = 0
    runs: dict[str, list[Run]] = {label: [] for label, *_ in VARIANTS}
    with RedisServer(appendfsync="always") as redis, SmtpSink(keep=False) as sink:
        env = settings(redis.url, sink.port)
        for _ in range(args.rounds):
            rate, size = bare_smtplib(env, sink.port, args.jobs)
            bare.append(rate)
            for label, command, workers, share in VARIANTS:
                count = max(int(args.jobs * share), 10)
                late = "rq worker" in label  # it will not start while suspended
                runs[label].append(
                    run_workers(command(redis.url), env, redis.pid, sink, count, workers, late)
                )
    print(table(bare, runs, args, size))
    if args.plot:
        rates = {label: [run.rate for run in results] for label, results in runs.items()}
        plots.throughput({"bare smtplib loop": bare, **rates}, args.plot)


def table(bare: list[float], runs: dict[str, list[Run]], args, size: int) -> str:
    reference = statistics.median(bare)
    lines = [
        f"{args.jobs} email jobs per round, {args.rounds} alternating rounds; the project's "
        f"{size / 1000:.1f} kB email to an aiosmtpd sink; Redis with appendfsync always.",
        "",
        f"{'setup':<38} {'emails/s':>9} {'range':>13} {'x bare':>7}   CPU ms/job:"
        f" {'workers':>7} {'redis':>6} {'sink':>5}",
        f"{'bare smtplib loop (one connection)':<38} {reference:>9.0f} "
        f"{_range(bare):>13} {1:>7.2f}",
    ]
    for label, results in runs.items():
        rates = [r.rate for r in results]
        per_job = [r.cpu_ms_per_job() for r in results]
        cpu = [statistics.median(part) for part in zip(*per_job, strict=True)]
        lines.append(
            f"{label:<38} {statistics.median(rates):>9.0f} {_range(rates):>13} "
            f"{statistics.median(rates) / reference:>7.2f}   {'':>11} "
            f"{cpu[0]:>7.1f} {cpu[1]:>6.1f} {cpu[2]:>5.1f}"
        )
    return "\n".join(lines)


def _range(values: list[float]) -> str:
    return f"{min(values):.0f}-{max(values):.0f}"


if __name__ == "__main__":
    main()
