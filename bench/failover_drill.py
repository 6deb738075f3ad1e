"""make failover-drill: kill the Redis primary under load, again and again, and count.

Everything is real and on 127.0.0.1: a primary, two replicas and three sentinels
(harness/sentinel.py), the web app under gunicorn, the Procfile's worker pool and
two cron schedulers (one leads), all on the redis+sentinel:// REDIS_URL with
REDIS_WAIT_REPLICAS=1, and an SMTP sink that counts who got what. A thread POSTs a
thought to the API every POST_INTERVAL seconds, each to an address of its own. Each
round SIGKILLs whichever node is primary, waits for the sentinels to promote a
replica, for the web to accept again and for that thought's email, then starts the
killed node again, which rejoins as a replica. At the end every accepted thought
must be sent.

It prints, per round, the seconds from the kill to the new primary, to the first 202
of a POST sent after the kill and to that thought's email; and in all: POSTs,
accepted (202), refused (503), other answers (a bug: there must be none), accepted
but lost, accepted but not sent in time, and emails sent twice. It exits 1 if any
accepted thought is lost or unsent, an answer was neither 202 nor 503, or no cron
scheduler leads at the end.

    .venv/bin/python bench/failover_drill.py [--rounds 5] [--workers 4]
"""

import argparse
import collections
import contextlib
import http.client
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from redis.exceptions import RedisError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app import ROOT, keys, submissions  # noqa: E402
from app.ops.redis_connection import close, connect  # noqa: E402
from harness.polling import wait_for  # noqa: E402
from harness.ports import free_port  # noqa: E402
from harness.sentinel import FailoverSet  # noqa: E402
from harness.smtp_sink import SmtpSink  # noqa: E402
from harness.worker_processes import WorkerProcesses, process_env  # noqa: E402
from jobs.runtime.cron_scheduler import LEADER_TTL_SECONDS, STANDBY_CHECK_SECONDS  # noqa: E402

POST_INTERVAL = 0.05
RECOVERY_BOUND_SECONDS = 60  # a round that has not recovered by then fails the drill
ALL_SENT_BOUND_SECONDS = 180


@dataclass
class Load:
    """POSTs from a thread, one every POST_INTERVAL, each to its own address."""

    port: int
    # (sent at, answered at, status, submission id, address)
    answers: list[tuple[float, float, int, str | None, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            address = f"drill{n}@example.com"
            sent = time.perf_counter()
            status, submission_id = self.post(address, n)
            self.answers.append((sent, time.perf_counter(), status, submission_id, address))
            n += 1
            time.sleep(POST_INTERVAL)

    def post(self, address: str, n: int) -> tuple[int, str | None]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            body = json.dumps({"email": address, "thought": f"drill thought {n}"})
            conn.request("POST", "/api/thoughts", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            payload = json.loads(response.read() or b"{}")
            return response.status, payload.get("id")
        except (OSError, ValueError):
            return 0, None  # no answer at all: counted as "other", which fails the drill
        finally:
            conn.close()

    def accepted(self) -> dict[str, str]:
        """Accepted submission ids, with their addresses."""
        return {sid: address for _, _, status, sid, address in self.answers if status == 202}

    def first_202_after(self, moment: float) -> float | None:
        """When the first POST sent after ``moment`` was accepted."""
        found = (
            done for sent, done, status, _, _ in self.answers if sent > moment and status == 202
        )
        return next(found, None)


@dataclass
class Round:
    to_new_primary: float
    to_first_202: float
    to_first_email: float


@dataclass
class Report:
    rounds: list[Round]
    answers: collections.Counter
    accepted: int
    lost: list[str]
    stuck: list[str]  # accepted, still there, not sent within ALL_SENT_BOUND_SECONDS
    duplicates: int
    scheduler_leads: bool  # a cron scheduler holds the leader lock on the last primary

    @property
    def ok(self) -> bool:
        answers_ok = set(self.answers) <= {202, 503}
        return not self.lost and not self.stuck and answers_ok and self.scheduler_leads

    def lines(self) -> list[str]:
        out = ["round  new primary  first 202  its email   (seconds after the kill)"]
        for n, r in enumerate(self.rounds, 1):
            times = (r.to_new_primary, r.to_first_202, r.to_first_email)
            out.append(f"{n:>5}  {times[0]:>11.1f}  {times[1]:>9.1f}  {times[2]:>11.1f}")
        other = sum(count for status, count in self.answers.items() if status not in (202, 503))
        out.append(
            f"POSTs {sum(self.answers.values())}: accepted {self.accepted}, "
            f"refused (503) {self.answers.get(503, 0)}, other {other}; "
            f"lost {len(self.lost)}, not sent {len(self.stuck)}, sent twice {self.duplicates}; "
            f"a cron scheduler leads: {'yes' if self.scheduler_leads else 'NO'}"
        )
        return out + [f"  not sent: {line}" for line in self.stuck]


def web_command(port: int) -> list[str]:
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    args = ["--worker-class", "gthread", "--workers", "1", "--threads", "4"]
    args += ["--bind", f"127.0.0.1:{port}", "--no-control-socket", "--log-level", "warning"]
    return [gunicorn, *args, "app:create_app()"]


def drill(rounds: int, workers: int = 4, quiet: bool = True) -> Report:
    with tempfile.TemporaryDirectory(prefix="drill-") as tmp, SmtpSink(keep=False) as sink:
        with FailoverSet(Path(tmp)) as servers:
            env = process_env(settings(servers.url, sink.port))
            return _run(servers, sink, env, rounds, workers, quiet)


def settings(redis_url: str, smtp_port: int) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "REDIS_WAIT_REPLICAS": "1",
        "REDIS_WAIT_TIMEOUT_MS": "1000",
        "MAIL_PORT": str(smtp_port),
        "MAILER_DELAY_SECONDS": "0.1",  # some jobs are always mid-send when the primary dies
        "RATELIMIT_PER_CLIENT": "100000 per minute",
        "RETRY_BASE_SECONDS": "1",
        "RETRY_MAX": "6",
        "SECRET_KEY": "drill",
        "GIPHY_API_KEY": "",
    }


def _run(servers, sink, env, rounds, workers, quiet) -> Report:
    port = free_port()
    output = subprocess.DEVNULL if quiet else None
    daemons = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=output)
        for command in (
            web_command(port),
            *[[sys.executable, "-m", "jobs.runtime.cron_scheduler"]] * 2,
        )
    ]
    pool = WorkerProcesses(env, workers=workers, quiet=quiet)
    load = Load(port)
    thread = threading.Thread(target=load.run, daemon=True)
    try:
        pool.start(1)
        wait_for(lambda: load.post("drill-warmup@example.com", -1)[0] == 202, 60, "the web app")
        thread.start()
        done = [_one_round(servers, sink, load) for _ in range(rounds)]
        load.stop.set()
        thread.join(timeout=60)
        return _account(env, sink, load, done)
    finally:
        load.stop.set()
        pool.stop_all()
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)


def _one_round(servers: FailoverSet, sink: SmtpSink, load: Load) -> Round:
    emails = sink.count
    wait_for(lambda: sink.count > emails, RECOVERY_BOUND_SECONDS, "an email before the kill")
    emails, killed_at = sink.count, time.perf_counter()
    old = servers.kill_primary()
    servers.wait_for_new_primary(old.port, RECOVERY_BOUND_SECONDS)
    promoted = time.perf_counter()
    first_202 = wait_for(
        lambda: load.first_202_after(killed_at), RECOVERY_BOUND_SECONDS, "a 202 after the kill"
    )
    first_email = wait_for(
        lambda: _first_email_accepted_after(sink, load, killed_at),
        RECOVERY_BOUND_SECONDS,
        "the email of a thought accepted after the kill",
    )
    servers.rejoin(old)
    return Round(promoted - killed_at, first_202 - killed_at, first_email - killed_at)


def _first_email_accepted_after(sink: SmtpSink, load: Load, moment: float) -> float | None:
    """When the first email of a thought POSTed after ``moment`` arrived (emails of
    jobs already running at the kill arrive regardless: they say nothing of recovery)."""
    later = {address for sent, _, status, _, address in load.answers if sent > moment}
    arrivals = zip(sink.arrived, sink.recipients, strict=False)
    return next((at for at, to in arrivals if at > moment and later.intersection(to)), None)


def _account(env, sink: SmtpSink, load: Load, rounds: list[Round]) -> Report:
    accepted = load.accepted()
    redis = connect(env["REDIS_URL"], socket_connect_timeout=1, socket_timeout=2)
    deadline = time.monotonic() + ALL_SENT_BOUND_SECONDS
    try:
        while (unsent := _unsent(redis, accepted)) and time.monotonic() < deadline:
            time.sleep(0.5)
        lost = [sid for sid in accepted if _status(redis, sid) is None]
        stuck = [_describe(redis, sid) for sid in unsent if sid not in lost]
        leads = _a_scheduler_leads(redis)
    finally:
        close(redis)  # and its clients of the sentinels
    emails = collections.Counter(address for message in sink.recipients for address in message)
    duplicates = sum(emails[address] - 1 for address in accepted.values() if emails[address] > 1)
    statuses = collections.Counter(status for _, _, status, _, _ in load.answers)
    return Report(rounds, statuses, len(accepted), lost, stuck, duplicates, leads)


def _a_scheduler_leads(redis) -> bool:
    """A cron scheduler holds the leader lock on the new primary, or takes it within
    the time the lock lives plus a standby's look: the lock written on the primary
    that died may never have reached the replica (only writes that wait for it do)."""
    deadline = time.monotonic() + LEADER_TTL_SECONDS + STANDBY_CHECK_SECONDS
    while time.monotonic() < deadline:
        with contextlib.suppress(RedisError):
            if redis.exists(keys.CRON_LEADER):
                return True
        time.sleep(0.5)
    return False


def _unsent(redis, accepted: dict[str, str]) -> list[str]:
    return [sid for sid in accepted if _status(redis, sid) != "sent"]


def _describe(redis, submission_id: str) -> str:
    """A submission that was not sent in time: its status and last events."""
    found = submissions.load(redis, submission_id)
    events = [
        f"{e.get('event')}: {e.get('detail')}" for e in submissions.journey(redis, submission_id)
    ]
    return f"{submission_id} {found.status if found else '?'}: " + " | ".join(events[-4:])


def _status(redis, submission_id: str) -> str | None:
    found = submissions.load(redis, submission_id)
    return found.status if found else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="failovers (5)")
    parser.add_argument("--workers", type=int, default=4, help="workers in the pool (4)")
    parser.add_argument("--verbose", action="store_true", help="show every process's log")
    args = parser.parse_args(argv)
    print(f"failover drill: {args.rounds} failovers under load (a POST every {POST_INTERVAL} s)")
    report = drill(args.rounds, args.workers, quiet=not args.verbose)
    print("\n".join(report.lines()))
    if not report.ok:
        print(
            "FAILED: a thought accepted and lost, an answer not 202 or 503, or no scheduler leads"
        )
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
