"""How each run of the email job ended, counted for /metrics (app/ops/metrics.py).

A run that sent its email is counted in the transaction that records `sent`
(jobs/gif_sender.py); RQ calls ``on_send_success`` after any other run that returned,
and the job's failure callback calls ``record`` after one that raised. Each count
is the run's outcome, how long it ran and how long it waited.
"""

from datetime import UTC, datetime

from redis import Redis
from rq.job import Job

from app.ops import metrics

SENT = "sent"
ALREADY_SENT = "already_sent"
UNCONFIRMED = "unconfirmed"
NOTHING_TO_DO = "nothing_to_do"  # missing, or closed without being sent (cancelled, dead)
FAILED_RETRYING = "failed_retrying"
DEAD = "dead"
BUSY = "busy"  # another run held the lock; RQ retries this one
HANDED_BACK = "handed_back"  # its worker was stopping: back on the queue (jobs/runtime/shutdown.py)

# What send_gif_email returns -> its outcome.
RESULTS = {"sent": SENT, "already sent": ALREADY_SENT, "unconfirmed": UNCONFIRMED}


def on_send_success(job: Job, connection: Redis, result: str, *args, **kwargs) -> None:
    """A sent email was counted already, with its `sent` flag (``count``)."""
    if result != "sent":
        record(connection, job, RESULTS.get(result, NOTHING_TO_DO))


def record(connection: Redis, job: Job, outcome: str) -> None:
    """Count a run in a round trip of its own."""
    with connection.pipeline(transaction=False) as pipe:
        count(pipe, job, outcome)
        pipe.execute()


def count(pipe, job: Job | None, outcome: str) -> None:
    """Queue a run's outcome, duration so far and wait in ``pipe``: in the job's own
    transaction where it has one (a sent email: counted if and only if `sent` is
    written, and with Redis syncing every write to disk, no extra sync per job)."""
    if job is None or not metrics.enabled():
        return  # WORKIT_DELIVERY=now runs no job
    queue = job.origin
    metrics.count(pipe, "workit_jobs_total", queue=queue, outcome=outcome)
    started, enqueued = _aware(job.started_at), _aware(job.enqueued_at)
    if started:
        seconds = (datetime.now(UTC) - started).total_seconds()
        metrics.observe(pipe, "workit_job_duration_seconds", seconds, queue=queue)
    if started and enqueued:
        seconds = max(0.0, (started - enqueued).total_seconds())
        metrics.observe(pipe, "workit_job_wait_seconds", seconds, queue=queue)


def _aware(moment: datetime | None) -> datetime | None:
    """RQ keeps naive UTC datetimes."""
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment
