"""The names of the RQ queues, in the order a worker drains them: mail first,
housekeeping last.

Both sides need them: the web app counts and reports the queues (app/ops/health.py,
app/views.py), and each job names its own (jobs/gif_sender.py, jobs/alerts.py,
jobs/sweeper.py). They live here, in app/, because jobs/ builds on app/ and never
the other way round (app/background.py); jobs/__init__.py hands them on to jobs/.
"""

from redis import Redis
from rq import Queue

MAILERS = "mailers"
DEFAULT = "default"
MAINTENANCE = "maintenance"
QUEUES = (MAILERS, DEFAULT, MAINTENANCE)


def depths(redis: Redis) -> dict[str, int]:
    """Jobs waiting on each queue: what /healthz and /metrics both report."""
    return {name: Queue(name, connection=redis).count for name in QUEUES}
