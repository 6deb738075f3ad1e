"""`make bench`: run every benchmark and write docs/benchmarks.md from what they print.

Each benchmark starts its own servers on 127.0.0.1 and prints its table; this
puts them under one heading with the machine and the commit they ran on, so a
figure that the README or the docs refer to can be traced to a run. `--quick` runs each at a tiny
size and writes nothing (make test uses it, so no benchmark can rot).

    .venv/bin/python bench/report.py [--quick]
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmarks.md"

PLOTS = OUT.parent / "bench"


class Bench(NamedTuple):
    script: str
    heading: str
    question: str
    chart: str | None = None  # its PNG under docs/bench/


BENCHES = [
    Bench("bench/post_latency.py", "POST latency, `now` vs `later`", "What the hand-off buys."),
    Bench("bench/handoff.py", "The hand-off under compose's web server", "What enqueueing costs."),
    Bench(
        "bench/worker_throughput.py",
        "Worker throughput",
        "What a job costs, and which setup wins.",
        "throughput.png",
    ),
    Bench(
        "bench/peers.py",
        "Beside RQ as it ships and Celery",
        "Where the project stands: the same job under each, and what each asks of Redis.",
    ),
    Bench(
        "bench/tricks.py",
        "Speed work, trick by trick",
        "Which tricks earn their place in the worker.",
    ),
    Bench(
        "bench/replication.py",
        "A replica and WAIT",
        "What writes that survive a failover cost the POST and the workers.",
    ),
    Bench(
        "bench/metrics_cost.py",
        "What /metrics costs",
        "The POST and the workers with Prometheus metrics on and off.",
    ),
    Bench("bench/scaling.py", "Scaling with workers", "Do more workers send more?", "scaling.png"),
    Bench(
        "bench/end_to_end.py",
        "End to end",
        "How long a submission waits for its email under load.",
        "end_to_end.png",
    ),
    Bench("bench/mailcatcher_bench.py", "The mail catcher", "How fast the sink takes mail."),
]


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; commit {commit or 'unknown'}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


def run(script: str, quick: bool, plot: Path | None) -> str:
    command = [sys.executable, script, *(["--quick"] if quick else [])]
    command += ["--plot", str(plot)] if plot else []
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{script} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout.rstrip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny runs; write nothing")
    args = parser.parse_args(argv)
    sections = [f"# Benchmarks\n\nWritten by `make bench` on {machine()}.\n"]
    with tempfile.TemporaryDirectory() as scratch:
        charts = Path(scratch) if args.quick else PLOTS  # quick: drawn, then thrown away
        for script, heading, question, chart in BENCHES:
            print(f"== {script}", flush=True)
            output = run(script, args.quick, chart and charts / chart)
            print(output, flush=True)
            section = f"## {heading}\n\n{question} `{script}`:\n\n```text\n{output}\n```\n"
            if chart:
                section += f"\n![{heading}](bench/{chart})\n"
            sections.append(section)
    if not args.quick:
        notes = OUT.with_name("benchmarks-notes.md")
        if notes.exists():
            sections.append(notes.read_text())
        OUT.write_text("\n".join(sections))
        print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
