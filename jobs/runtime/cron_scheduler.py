"""The recurring-job scheduler: RQ's cron scheduler, with one active however many run.

    python -m jobs.runtime.cron_scheduler --url redis://127.0.0.1:6379/0

RQ's `rq cron` has no lock: start two (a second machine, a deploy that overlaps the
old one) and every recurring job is enqueued twice. Here each scheduler must hold a
Redis lock to enqueue anything; the others stand by and check the lock every few
seconds. The leader renews its lock before each pass and gives it up when it stops,
so a standby takes over at once after a clean stop, and within LEADER_TTL_SECONDS
after a crash.

The recurring jobs themselves are declared in jobs/cron.py.
"""

import argparse
import contextlib
import logging
import os

from redis.exceptions import LockError, RedisError
from redis.lock import Lock
from rq.cron import CronScheduler

from app import LOG_FORMAT, keys
from app.config import DEFAULT_REDIS_URL
from app.ops.redis_connection import connect
from jobs import cron

log = logging.getLogger(__name__)

# A leader that died is replaced within this long; the leader renews every third of it.
LEADER_TTL_SECONDS = 30
STANDBY_CHECK_SECONDS = 5


class OneActiveCronScheduler(CronScheduler):
    """Enqueues recurring jobs only while it holds the leader lock."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.leader_lock = Lock(
            self.connection, keys.CRON_LEADER, timeout=LEADER_TTL_SECONDS, thread_local=False
        )
        self.leading: bool | None = None  # not known until the first look at the lock

    def enqueue_jobs(self):
        leading = self._lead()
        if leading != self.leading:
            doing = "leads: enqueues the recurring jobs" if leading else "stands by"
            log.info("cron scheduler %s: %s", self.name, doing)
        self.leading = leading
        if not leading:
            return []
        with self._through_an_outage("enqueue the recurring jobs"):
            return super().enqueue_jobs()
        return []

    # RQ's CronScheduler exits on the first Redis error. Redis restarting, or failing
    # over to a replica (LESSON.md, "When Redis fails over"), must not end it: skip
    # this beat, log one line, and look again at the next.

    def heartbeat(self) -> None:
        with self._through_an_outage("beat"):
            super().heartbeat()

    def save(self, pipeline=None) -> None:
        with self._through_an_outage("save its jobs' times"):
            super().save(pipeline)

    @contextlib.contextmanager
    def _through_an_outage(self, what: str):
        try:
            yield
        except RedisError as exc:
            log.warning(
                "cron scheduler %s: could not %s (Redis: %s); again soon", self.name, what, exc
            )

    def calculate_sleep_interval(self) -> float:
        """A standby sleeps a few seconds between looks at the lock; the leader wakes in
        time to renew it, whatever its jobs' intervals."""
        if not self.leading:
            return STANDBY_CHECK_SECONDS
        return min(super().calculate_sleep_interval(), LEADER_TTL_SECONDS / 3)

    def register_death(self, pipeline=None) -> None:
        with self._through_an_outage("register its death"):
            super().register_death(pipeline)
        if self.leading:
            try:
                self.leader_lock.release()
            except (LockError, RedisError):  # expired already, or Redis is gone
                pass

    def _lead(self) -> bool:
        """Renew the lock if it is ours, else try to take it."""
        try:
            if self.leader_lock.owned():
                return self.leader_lock.reacquire()
            return self.leader_lock.acquire(blocking=False, token=self.name)
        except (LockError, RedisError) as exc:
            log.warning("cron scheduler %s: could not check the leader lock: %s", self.name, exc)
            return False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.runtime.cron_scheduler", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--url", default=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
    parser.add_argument("--logging-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.logging_level, format=LOG_FORMAT)
    scheduler = OneActiveCronScheduler(
        connection=connect(args.url), logging_level=args.logging_level
    )
    scheduler.load_config_from_file(cron.__name__)
    scheduler.start()


if __name__ == "__main__":
    main()
