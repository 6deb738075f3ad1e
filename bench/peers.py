"""Work-It's pool beside its peers, on one job: where the project stands.

Every system runs Work-It's own email job (``jobs.gif_sender.send_gif_email``: lock,
`sent` flag, the project's 5 kB email over a kept Flask-Mail connection, `sent`) with
four workers, to an aiosmtpd sink, against Redis with appendfsync always:

- Work-It's pool: ``python -m jobs.runtime.pool --workers 4`` (the Procfile's line);
- RQ as it ships: ``rq worker-pool -n 4 -w rq.worker.SimpleWorker``, given the
  lesson's AppJob (the job needs an app context);
- Celery: prefork x4, acks_late, prefetch 1, no results (bench/celery_peer.py);
- the job in a loop, no queue: one process calling the job for each submission,
  what the job itself costs;
- a bare smtplib loop on one connection: the same bytes, the reference.

Each logs at WARNING (RQ's `-q`, Celery's `-l warning`, the pool's `--logging-level`),
so no system pays for lines the others leave out; the job's own line is written under
all of them. A backlog is in place before each system starts; the clock, the CPU and Redis's
command counts run from its first email to its last, so start-up is left out. Rounds
alternate the systems, so each meets the same machine. The second table counts the
Redis commands each system spends per job (INFO commandstats), by command.

    .venv/bin/python bench/peers.py [--rounds 3] [--jobs 1000] [--quick]
"""

import argparse
import signal
import statistics
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis
from rq import Queue
from rq.suspension import resume, suspend

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.ops.redis_connection import connect  # noqa: E402
from bench.celery_peer import QUEUE as CELERY_QUEUE  # noqa: E402
from bench.worker_throughput import bare_smtplib  # noqa: E402
from bench.workers import PYTHON, RQ, cpu_seconds, enqueue, forget_workers, settings  # noqa: E402
from harness.polling import wait_for  # noqa: E402
from harness.redis_server import RedisServer  # noqa: E402
from harness.smtp_sink import SmtpSink  # noqa: E402
from harness.worker_processes import WorkerProcesses, process_env  # noqa: E402
from jobs import MAILERS  # noqa: E402

WORKERS = 4
POOL = "Work-It's pool (jobs.runtime.pool)"
STOCK = "rq worker-pool, SimpleWorker"
CELERY = "Celery prefork, acks_late"
LOOP = "the job in a loop, no queue"
BARE = "bare smtplib loop (one connection)"
READS = "(reads)"


def pool_command(url: str) -> list[str]:
    return [PYTHON, "-m", "jobs.runtime.pool", "--workers", str(WORKERS), "--url", url,
            "--logging-level", "WARNING", MAILERS]  # fmt: skip


def stock_rq_command(url: str) -> list[str]:
    return [RQ, "worker-pool", "-n", str(WORKERS), "-w", "rq.worker.SimpleWorker",
            "-j", "jobs.worker.AppJob", "-q", "--url", url, MAILERS]  # fmt: skip


def celery_command(url: str) -> list[str]:
    return [PYTHON, "-m", "celery", "-A", "bench.celery_peer", "worker", "-P", "prefork",
            "-c", str(WORKERS), "-Q", CELERY_QUEUE, "-l", "warning",
            "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip


@dataclass
class Run:
    emails: int
    seconds: float  # from the first email to the last
    jobs: int  # done between the CPU and command snapshots, which the parts count
    cpu_workers: float
    cpu_redis: float
    commands: Counter = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return (self.emails - 1) / self.seconds

    def calls(self) -> int:
        return sum(n for name, n in self.commands.items() if name != READS)


def commandstats(redis: Redis) -> Counter:
    """Calls so far by command; under "(reads)", the requests Redis read from its
    clients: a pipeline or a MULTI block sent at once is one, so near enough the
    round trips."""
    stats = redis.info("commandstats")
    calls = Counter({name.removeprefix("cmdstat_"): s["calls"] for name, s in stats.items()})
    calls[READS] = redis.info("stats")["total_reads_processed"]
    return calls


def measure(pid: int, redis: Redis, redis_pid: int, sink: SmtpSink, before: int, count: int):
    """From the first email to the last: time, CPU (``pid``'s tree, Redis), commands."""
    wait_for(lambda: sink.count > before, 120, "the first email", interval=0.001)
    done, cpu, stats = sink.count, cpu_seconds(pid, redis_pid), commandstats(redis)
    wait_for(lambda: sink.count - before >= count, 600, "every email", interval=0.01)
    cpu_after, stats_after = cpu_seconds(pid, redis_pid), commandstats(redis)
    if sink.count - before != count:
        raise RuntimeError(f"{sink.count - before} emails for {count} jobs: not exactly once")
    jobs = sink.count - done
    first, last = sink.arrived[before], sink.arrived[before + count - 1]
    commands = stats_after - stats
    commands.pop("info", None)  # ours, taking these counts
    commands[READS] -= 2
    spent = [after - was for after, was in zip(cpu_after, cpu, strict=True)]
    return Run(count, last - first, jobs, spent[0], spent[1], commands)


def run_rq(command: list[str], env, redis, redis_pid, sink, count) -> Run:
    """RQ's workers wait, suspended, until all have registered and the backlog is in."""
    suspend(redis)
    enqueue(env, count)
    workers = WorkerProcesses(process_env(env), command, WORKERS, quiet=True)
    try:
        workers.start(1)
        before = sink.count
        resume(redis)
        return measure(workers.procs[0].pid, redis, redis_pid, sink, before, count)
    finally:
        workers.stop_all(signal.SIGKILL)
        forget_workers(redis)


def run_celery(env, redis, redis_pid, sink, count) -> Run:
    """The same submissions (their RQ jobs dropped), each sent to Celery as a task."""
    from bench.celery_peer import celery, send_gif_email

    ids = backlog(env, redis, count)
    celery.conf.broker_url = env["REDIS_URL"]
    with celery.producer_or_acquire() as producer:
        for submission_id in ids:
            send_gif_email.apply_async((submission_id,), producer=producer)
    workers = WorkerProcesses(process_env(env), celery_command(env["REDIS_URL"]), None, True)
    try:
        before = sink.count
        workers.start(1)
        return measure(workers.procs[0].pid, redis, redis_pid, sink, before, count)
    finally:
        workers.stop_all(signal.SIGKILL)
        redis.delete(CELERY_QUEUE, "unacked", "unacked_index")


def run_loop(env, redis, redis_pid, sink, count) -> Run:
    ids = backlog(env, redis, count)
    before = sink.count
    loop = subprocess.Popen(
        [PYTHON, __file__, "--job-loop"],
        env=process_env(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # as quiet as the workers' output
        text=True,
    )
    loop.stdin.write("\n".join(ids))
    loop.stdin.close()
    try:
        return measure(loop.pid, redis, redis_pid, sink, before, count)
    finally:
        loop.wait(timeout=60)


def backlog(env, redis: Redis, count: int) -> list[str]:
    """``count`` submissions put in through the app's own path, their RQ jobs dropped."""
    queue = Queue(MAILERS, connection=redis)
    queue.empty()
    enqueue(env, count)
    jobs = queue.get_jobs()
    queue.empty()
    return [job.args[0] for job in jobs]


def job_loop() -> None:
    """--job-loop: send each submission id read from stdin, in this one process."""
    from jobs.gif_sender import send_gif_email
    from jobs.worker import prepare_app

    ids = sys.stdin.read().split()
    with prepare_app().app_context():
        for submission_id in ids:
            send_gif_email(submission_id)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="one tiny round (tests)")
    parser.add_argument("--job-loop", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.job_loop:
        return job_loop()
    if args.quick:
        args.rounds, args.jobs = 1, 20
    bare: list[float] = []
    runs: dict[str, list[Run]] = {POOL: [], STOCK: [], CELERY: [], LOOP: []}
    with RedisServer(appendfsync="always") as server, SmtpSink(keep=False) as sink:
        env = settings(server.url, sink.port)
        redis = connect(server.url)
        for _ in range(args.rounds):
            bare.append(bare_smtplib(env, sink.port, args.jobs)[0])
            job = (env, redis, server.pid, sink, args.jobs)
            runs[POOL].append(run_rq(pool_command(server.url), *job))
            runs[STOCK].append(run_rq(stock_rq_command(server.url), *job))
            runs[CELERY].append(run_celery(*job))
            runs[LOOP].append(run_loop(*job))
        redis.close()
    print(table(bare, runs, args))
    print()
    print(command_table(runs))


def table(bare: list[float], runs: dict[str, list[Run]], args) -> str:
    reference = statistics.median(bare)
    lines = [
        f"{args.jobs} email jobs per system and round, {args.rounds} alternating rounds, "
        f"{WORKERS} workers each; Redis with appendfsync always.",
        "",
        f"{'system':<36} {'emails/s':>8} {'range':>11} {'x bare':>7}"
        f" {'x Celery':>8}   CPU ms/job: {'workers':>7} {'redis':>5}  per job: commands"
        " round trips",
        f"{BARE:<36} {reference:>8.0f} {_range(bare):>11} {1:>7.2f}",
    ]
    celery = statistics.median(r.rate for r in runs[CELERY])
    for label, results in runs.items():
        rate = statistics.median(r.rate for r in results)
        workers = statistics.median(1000 * r.cpu_workers / r.jobs for r in results)
        redis = statistics.median(1000 * r.cpu_redis / r.jobs for r in results)
        commands = statistics.median(r.calls() / r.jobs for r in results)
        reads = statistics.median(r.commands[READS] / r.jobs for r in results)
        lines.append(
            f"{label:<36} {rate:>8.0f} {_range([r.rate for r in results]):>11} "
            f"{rate / reference:>7.2f} {rate / celery:>8.2f}   {'':>11} "
            f"{workers:>7.1f} {redis:>5.1f}  {commands:>8.1f} {reads:>11.1f}"
        )
    return "\n".join(lines)


def command_table(runs: dict[str, list[Run]]) -> str:
    """Redis commands per job by command, summed over the rounds; the top ones."""
    per_job = {
        label: {name: calls / sum(r.jobs for r in results)
                for name, calls in sum((r.commands for r in results), Counter()).items()}
        for label, results in runs.items()
    }  # fmt: skip
    names = sorted(
        {name for counts in per_job.values() for name in counts},
        key=lambda name: -max(counts.get(name, 0) for counts in per_job.values()),
    )
    short = {POOL: "pool", STOCK: "rq pool", CELERY: "Celery", LOOP: "loop"}
    lines = [
        "Redis commands per job, by command:",
        f"{'command':<22}" + "".join(f"{short[label]:>9}" for label in per_job),
    ]
    for name in names:
        counts = [per_job[label].get(name, 0) for label in per_job]
        if max(counts) >= 0.05:
            lines.append(f"{name:<22}" + "".join(f"{c:>9.2f}" for c in counts))
    return "\n".join(lines)


def _range(values: list[float]) -> str:
    return f"{min(values):.0f}-{max(values):.0f}"


if __name__ == "__main__":
    main()
