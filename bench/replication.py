"""What a replica and WAIT cost: the POST's req/s and the worker's jobs/s on one
Redis, beside the same on a primary with one replica behind Sentinel, where every
accepted submission and every `sent` flag waits for the replica (REDIS_WAIT_REPLICAS=1).

Both setups run on 127.0.0.1, every node with its append-only file synced on every
write (as compose runs Redis), measured side by side (bench/sides.py). Prints each
side's rate per round, the median, and the replicated side's ratio to one Redis.

    .venv/bin/python bench/replication.py [--rounds 3] [--jobs 1000] [--quick]
"""

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.sides import Side, arguments, measure, table  # noqa: E402
from bench.workers import settings  # noqa: E402
from harness.redis_server import RedisServer  # noqa: E402
from harness.sentinel import FailoverSet  # noqa: E402
from harness.smtp_sink import SmtpSink  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__, argv)
    with (
        tempfile.TemporaryDirectory(prefix="bench-replication-") as tmp,
        RedisServer(appendfsync="always") as single,
        FailoverSet(Path(tmp), replicas=1) as replicated,
        SmtpSink(keep=False) as sink,
    ):
        sides = [
            Side("one Redis", settings(single.url, sink.port), single.pid),
            Side(
                "1 replica + WAIT",
                settings(replicated.url, sink.port, REDIS_WAIT_REPLICAS=1),
                replicated.primary().pid,
            ),
        ]
        posts, jobs = measure(sides, sink, args.rounds, args.jobs, args.seconds)
    print(table(posts, jobs, args.rounds, args.jobs, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
