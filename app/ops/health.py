"""GET /healthz: can this deployment take a thought and get it sent?

A thought needs two things to become an email: Redis, where the web app stores
it and queues its job, and at least one live RQ worker to run that job. So the
answer is 200 only when both are there, and 503 with a plain reason otherwise,
which is what a load balancer or `docker compose`'s healthcheck acts on. The
body also shows each queue's depth, whether RQ's scheduler (which fires delayed
retries) and the cron scheduler (which runs the sweeper) are alive: numbers to
read, not reasons to refuse traffic, as is where Redis is: its primary, its replicas
with their lag and, behind Sentinel, the sentinels that answer and their quorum.

It reveals only counts, so it needs no password; it is exempt from rate limits
(a prober must never be told 429, nor depend on the limiter's own Redis), and a
GET needs no CSRF token. A Redis that does not answer is a 503, never a 500.
"""

from dataclasses import asdict, dataclass
from typing import Any

from flask import Blueprint
from redis import Redis
from redis.exceptions import RedisError
from rq import Worker
from rq.cron import CronScheduler
from rq.scheduler import RQScheduler

from app import queues
from app.extensions import get_redis
from app.ops.redis_connection import topology
from app.queues import QUEUES
from app.rate_limits import limiter

bp = Blueprint("health", __name__)
limiter.exempt(bp)

REDIS_SILENT = "Redis does not answer: thoughts can be neither stored nor queued."
NO_WORKER = "No RQ worker is running: thoughts would be queued but never sent."


@dataclass
class Health:
    """What /healthz answers. None means "unknown": Redis did not answer the question."""

    redis: bool
    queues: dict[str, int] | None = None
    workers: int | None = None
    scheduler: bool | None = None
    cron: int | None = None
    redis_topology: dict[str, Any] | None = None

    @property
    def reason(self) -> str | None:
        """Why the deployment cannot send thoughts now, or None if it can."""
        if not self.redis:
            return REDIS_SILENT
        if not self.workers:
            return NO_WORKER
        return None

    def as_json(self) -> dict[str, Any]:
        reason = self.reason
        return {"status": "unavailable" if reason else "ok", "reason": reason, **asdict(self)}


def live_workers(redis: Redis) -> int:
    """Workers whose heartbeat key still exists. `Worker.count` would also count a
    worker that was killed without unregistering, until RQ cleans its registry."""
    return len(Worker.all(connection=redis))


def scheduler_locks(redis: Redis) -> dict[str, bool]:
    """Per queue: does a live RQ scheduler hold its lock? Workers started
    `--with-scheduler` take `rq:scheduler-lock:<queue>` for each queue they serve and
    keep renewing it; the key expires soon after its holder dies (rq/scheduler.py)."""
    return {name: bool(redis.exists(RQScheduler.get_locking_key(name))) for name in QUEUES}


def cron_schedulers(redis: Redis) -> int:
    """Live cron schedulers, jobs/runtime/cron_scheduler.py (their hash expires two
    minutes after the last heartbeat). cleanup=False: a health probe only reads."""
    return len(CronScheduler.all(redis, cleanup=False))


def check(redis: Redis) -> Health:
    try:
        return Health(
            redis=bool(redis.ping()),
            queues=queues.depths(redis),
            workers=live_workers(redis),
            scheduler=all(scheduler_locks(redis).values()),
            cron=cron_schedulers(redis),
            redis_topology=topology(redis),
        )
    except RedisError:
        return Health(redis=False)


@bp.get("/healthz")
def healthz() -> tuple[dict[str, Any], int]:
    health = check(get_redis())
    return health.as_json(), 503 if health.reason else 200  # not cached: app/__init__.py
