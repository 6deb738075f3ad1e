"""Recurring jobs, loaded by jobs/runtime/cron_scheduler.py (the Procfile's `scheduler` line)."""

from rq import cron

from jobs import sweeper

cron.register(
    sweeper.requeue_stuck_submissions,
    queue_name=sweeper.QUEUE,
    interval=sweeper.INTERVAL_SECONDS,
)
