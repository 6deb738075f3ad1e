"""How a run of the email job ended: one list, for the job's result, its log line and
the `outcome` label of workit_jobs_total in /metrics.

A run that sent its email is counted in the transaction that records `sent`
(jobs/gif_sender.py); RQ calls ``on_send_success`` after any other run that returned,
and the failure callback (jobs/failures.py) counts a run that raised.
"""

from enum import StrEnum

from redis import Redis
from rq.job import Job

from app.ops import bookkeeping


class Outcome(StrEnum):
    SENT = "sent"
    ALREADY_SENT = "already_sent"  # an earlier run sent it
    UNCONFIRMED = "unconfirmed"  # the server took it and never answered: not resent
    NOTHING_TO_DO = "nothing_to_do"  # no such submission, or closed unsent (cancelled)
    FAILED_RETRYING = "failed_retrying"
    DEAD = "dead"  # failed, no retry left
    BUSY = "busy"  # another run held the lock; RQ retries this one
    HANDED_BACK = "handed_back"  # its worker was stopping: back on the queue


def on_send_success(job: Job, connection: Redis, result: str, *args, **kwargs) -> None:
    """Count a run that returned; a sent email was counted already, with its flag."""
    if result != Outcome.SENT:
        bookkeeping.count_run(connection, job, result)
