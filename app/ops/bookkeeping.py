"""The lesson's one door into operations: what its code tells them, in its own words.

The lesson's files (app/thoughts.py, jobs/gif_sender.py, jobs/failures.py, ...) call
these and nothing else of app/ops/. Behind them:

- Writes a failover must not undo wait until REDIS_WAIT_REPLICAS replicas have them
  (Redis's WAIT, app/ops/replication.py): an accepted thought, a job's lock, and the
  `sent` flag of an email the mail server took. With one Redis, nothing waits.
- What happened is counted for /metrics (app/ops/metrics.py): a thought accepted,
  how each run of the job ended, a red flag raised. An accepted thought and a sent
  email are counted in the transaction that records them, so a count is made if
  and only if the write is.
"""

import logging
import time
from collections.abc import Callable

from flask import current_app
from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import get_current_job
from rq.job import Job

from app.ops import metrics, replication
from app.ops.replication import NotReplicated, refuses_writes

__all__ = [
    "NotReplicated",
    "refuses_writes",
    "commit_accepted",
    "keep_lock",
    "commit_sent",
    "count_run",
    "count_red_flag",
    "SENT_WRITE_RETRY_SECONDS",
]

log = logging.getLogger(__name__)

# After the server accepted the email, the `sent` write (and its wait for replicas) is
# retried this long (a Redis restart, a failover) before giving up: a job that fails
# there would send it again.
SENT_WRITE_RETRY_SECONDS = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2)


def commit_accepted(redis: Redis, pipe: Pipeline, counted_as: str) -> None:
    """Run the transaction that stores a thought and hands over its job, counted as
    ``counted_as``; return once a replica has it, or raise NotReplicated."""
    metrics.count(pipe, "workit_submissions_total", delivery=counted_as)
    pipe.execute()
    replication.wait_for_replicas(redis, current_app.config)


def keep_lock(redis: Redis) -> None:
    """Return once a replica has the lock just taken (a replica promoted without it
    would let a second run take it), or raise NotReplicated."""
    replication.wait_for_replicas(redis, current_app.config)


def commit_sent(
    redis: Redis, record: Callable[[Pipeline], None], outcome: str, submission_id: str
) -> None:
    """Write ``record`` (the `sent` flag) with the run's ``outcome`` counted, until a
    replica has it. Redis may be restarting or failing over: the write is tried again
    for a few seconds, counted once, before the error is raised."""
    counted = False
    for pause in (*SENT_WRITE_RETRY_SECONDS, None):
        try:
            with redis.pipeline() as pipe:
                record(pipe)
                if not counted:  # a retry may follow a write that went in
                    metrics.count_run(pipe, get_current_job(), outcome)
                pipe.execute()
            counted = True
            replication.wait_for_replicas(redis, current_app.config)
            return
        except RedisError as exc:
            if pause is None:
                raise
            log.warning("submission_id=%s sent, but not yet recorded (%s)", submission_id, exc)
            time.sleep(pause)


def count_run(connection: Redis, job: Job, outcome: str) -> None:
    """Count how a run ended, in a round trip of its own (every ending but a send)."""
    with connection.pipeline(transaction=False) as pipe:
        metrics.count_run(pipe, job, outcome)
        pipe.execute()


def count_red_flag(connection: Redis, kind: str) -> None:
    metrics.count(connection, "workit_red_flags_total", kind=kind)
