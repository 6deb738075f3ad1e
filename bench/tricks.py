"""Speed work, trick by trick: what each one is worth to the default pool's emails/s.

The reference is what make dev runs (`shipped`: jobs.runtime.pool with 4 workers, its
tricks on). Every other variant differs from it by exactly one trick: a kept one
taken out (WORKER_TUNING without it, MAIL_KEEPALIVE_SECONDS=0, MAIL_FAST_WRITE=false),
or a removed one put back (patched in by bench/removed_tricks.py). A trick's gain is how much faster
the pool runs with it than without it, as the median over rounds of a ratio: the
variant's rate against `shipped`'s, measured right before and right after it
(their geometric mean). This shared machine drifts too much for rates even a
minute apart to compare, so `shipped` runs between every two variants, and each
is compared with its own neighbours. A trick stays only for a gain of 5% or more.
CPU saved is the same median for CPU per job (the workers' and Redis's): steadier
than the rate when the machine is shared, it says whether a trick that gains
nothing measurable makes a job any cheaper.
`plain` (every trick off) shows what all of them buy together.

None of them is on the web request's path (the POST stores and enqueues; no
email is built there), so the POST's req/s is not measured here: bench/handoff.py
measures it.

    .venv/bin/python bench/tricks.py [--rounds 5] [--jobs 500] [--quick]
"""

import argparse
import statistics
import sys
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.workers import PYTHON, Run, run_workers, settings  # noqa: E402
from harness.redis_server import RedisServer  # noqa: E402
from harness.smtp_sink import SmtpSink  # noqa: E402

WORKERS = 4
KEEP_BAR = 0.05


class Variant(NamedTuple):
    name: str
    trick: str  # the trick it adds or takes out ("" for the reference and plain)
    kept: bool  # the trick ships (taken out here) or was removed (put back here)
    tuning: str = "on"  # WORKER_TUNING
    keepalive: int = 30  # MAIL_KEEPALIVE_SECONDS
    fast_write: bool = True  # MAIL_FAST_WRITE
    patches: str = ""  # bench/removed_tricks.py


# In jobs/runtime/tuning.py; keepalive and fast-write are in app/ops/.
KEPT = ["heartbeat", "lean-bookkeeping", "round-trips"]
REMOVED_FROM_THE_WORKER = ["no-results"]
REMOVED_FROM_THE_JOB = [
    "no-persist",
    "address-pairs",
    "pipelined-release",
    "gc-freeze",
    "template-warmup",
]


def without(trick: str) -> Variant:
    others = ",".join(name for name in KEPT if name != trick) or "off"
    return Variant(f"without {trick}", trick, True, tuning=others)


def with_worker_trick(trick: str) -> Variant:
    return Variant(f"with {trick}", trick, False, tuning=",".join([*KEPT, trick]), patches=trick)


VARIANTS = [
    Variant("shipped", "", True),
    *[without(trick) for trick in KEPT],
    Variant("without keepalive", "keepalive", True, keepalive=0),
    Variant("without fast-write", "fast-write", True, fast_write=False),
    *[with_worker_trick(trick) for trick in REMOVED_FROM_THE_WORKER],
    *[Variant(f"with {trick}", trick, False, patches=trick) for trick in REMOVED_FROM_THE_JOB],
    Variant("plain", "", False, tuning="off", keepalive=0, fast_write=False),
]
QUICK = [  # every trick's code runs once, several to a run
    Variant("with mime", "mime", False, patches="address-pairs,gc-freeze"),
    Variant("with more", "more", False, patches="pipelined-release,template-warmup"),
    with_worker_trick("no-results"),
    Variant("without all", "all", True, tuning="off", keepalive=0, fast_write=False),
]


def measure(variant: Variant, redis, sink, jobs: int) -> Run:
    env = settings(
        redis.url,
        sink.port,
        WORKER_TUNING=variant.tuning,
        MAIL_KEEPALIVE_SECONDS=variant.keepalive,
        MAIL_FAST_WRITE=variant.fast_write,
    )
    command = [PYTHON, "-m", "bench.trick_pool", variant.patches, "--workers", str(WORKERS)]
    command += ["--url", redis.url, "mailers"]
    return run_workers(command, env, redis.pid, sink, jobs, WORKERS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="one tiny round (tests)")
    parser.add_argument("--plot", help="accepted for bench/report.py; nothing is drawn")
    parser.add_argument("--only", help="these variants (and shipped), comma-separated")
    args = parser.parse_args(argv)
    variants = VARIANTS
    if args.quick:  # every trick's code runs once, several to a run
        args.rounds, args.jobs = 1, 12
        variants = [VARIANTS[0], *QUICK]
    if args.only:
        chosen = set(args.only.split(","))
        variants = [v for v in variants if v.name == "shipped" or v.trick in chosen]
    shipped, others = variants[0], variants[1:]
    runs: dict[str, list[Run]] = {v.name: [] for v in variants}
    references: dict[str, list[Run]] = {v.name: [] for v in others}
    with RedisServer(appendfsync="always") as redis, SmtpSink(keep=False) as sink:
        for n in range(args.rounds):
            shift = n % max(len(others), 1)
            before = measure(shipped, redis, sink, args.jobs)
            runs[shipped.name].append(before)
            for variant in others[shift:] + others[:shift]:
                runs[variant.name].append(measure(variant, redis, sink, args.jobs))
                after = measure(shipped, redis, sink, args.jobs)
                runs[shipped.name].append(after)
                references[variant.name].append(_between(before, after))
                before = after
    print(table(variants, runs, references, args))


def _between(before: Run, after: Run) -> Run:
    """`shipped` as it stood while a variant ran: its two neighbours' geometric mean,
    in rate and in CPU per job."""
    jobs = before.jobs + after.jobs
    mean = statistics.geometric_mean
    return Run(
        jobs=jobs,
        seconds=jobs / mean([before.rate, after.rate]),
        cpu_workers=jobs * mean([before.cpu_workers / before.jobs, after.cpu_workers / after.jobs]),
        cpu_redis=jobs * mean([before.cpu_redis / before.jobs, after.cpu_redis / after.jobs]),
        cpu_sink=0.0,
    )


def table(
    variants: list[Variant], runs: dict[str, list[Run]], references: dict[str, list[Run]], args
) -> str:
    lines = [
        f"{args.jobs} email jobs per run, {args.rounds} rotating rounds, jobs.runtime.pool with "
        f"{WORKERS} workers; Redis with appendfsync always. gain: how much faster with "
        "the trick than without it, against `shipped` run right before and right after "
        "it; CPU saved: how much less CPU per job (workers and Redis) with it, the same way.",
        "",
        f"{'variant':<26} {'emails/s':>9} {'range':>11} {'gain':>7} {'gain range':>16} "
        f"{'CPU ms/job':>10} {'CPU saved':>9}  verdict",
    ]
    for variant in variants:
        rates = [run.rate for run in runs[variant.name]]
        cpu = [_cpu_per_job(run) for run in runs[variant.name]]
        around = references.get(variant.name, runs[variant.name])
        gains = _gains(variant, rates, [run.rate for run in around])
        saved = _gains(variant, [1 / c for c in cpu], [1 / _cpu_per_job(r) for r in around])
        gain = statistics.median(gains) if variant.trick else None
        verdict = _verdict(gain) if gain is not None else "-"
        lines.append(
            f"{variant.name:<26} {statistics.median(rates):>9.0f} "
            f"{min(rates):>5.0f}-{max(rates):<5.0f} {_pct(gain):>7} "
            f"{_spread(gains if variant.trick else None):>16} {statistics.median(cpu):>10.2f} "
            f"{_pct(statistics.median(saved) if variant.trick else None):>9}  {verdict}"
        )
    return "\n".join(lines)


def _cpu_per_job(run: Run) -> float:
    workers, redis, _sink = run.cpu_ms_per_job()
    return workers + redis


def _gains(variant: Variant, own: list[float], shipped: list[float]) -> list[float]:
    """Per round, how much more of ``own``'s measure (higher is better) the trick gives."""
    ratios = [mine / base for mine, base in zip(own, shipped, strict=True)]
    return [1 / r - 1 if variant.kept else r - 1 for r in ratios]


def _pct(gain: float | None) -> str:
    return "-" if gain is None else f"{gain:+.1%}"


def _spread(gains: list[float] | None) -> str:
    return "-" if gains is None else f"{min(gains):+.1%}..{max(gains):+.1%}"


def _verdict(gain: float) -> str:
    return "keep" if gain >= KEEP_BAR else "remove"


if __name__ == "__main__":
    main()
