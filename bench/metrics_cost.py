"""What /metrics costs: the POST's req/s and the worker's jobs/s with METRICS_ENABLED
on (the web under gunicorn with prometheus_client's multiprocess folder on a tmpfs,
as compose runs it; every run's outcome, duration and wait counted in Redis) beside off.

Two Redis servers, one per side, both with the append-only file synced on every
write, measured side by side (bench/sides.py). Prints each side's rate per round,
the median, and the ratio of metrics on to off.

    .venv/bin/python bench/metrics_cost.py [--rounds 3] [--jobs 1000] [--quick]
"""

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.sides import Side, arguments, measure, table  # noqa: E402
from bench.workers import settings  # noqa: E402
from harness.redis_server import RedisServer  # noqa: E402
from harness.smtp_sink import SmtpSink  # noqa: E402

# A tmpfs for prometheus_client's files, as docker-compose.yml mounts one.
SHM = "/dev/shm" if Path("/dev/shm").is_dir() else None


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__, argv)
    with (
        tempfile.TemporaryDirectory(prefix="bench-metrics-", dir=SHM) as tmp,
        RedisServer(appendfsync="always") as off,
        RedisServer(appendfsync="always") as on,
        SmtpSink(keep=False) as sink,
    ):
        sides = [
            Side("metrics off", settings(off.url, sink.port, METRICS_ENABLED="false"), off.pid),
            Side(
                "metrics on",
                settings(on.url, sink.port, PROMETHEUS_MULTIPROC_DIR=str(Path(tmp) / "prom")),
                on.pid,
            ),
        ]
        posts, jobs = measure(sides, sink, args.rounds, args.jobs, args.seconds)
    print(table(posts, jobs, args.rounds, args.jobs, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
