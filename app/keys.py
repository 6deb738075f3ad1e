"""Every Redis key Work-It writes, built here and nowhere else.

One prefix, colon-separated, so the web app, the jobs, the sweeper, the metrics
and the tests cannot drift apart, and `redis-cli --scan --pattern 'workit:*'`
finds all of ours. RQ's own keys (``rq:...``) are RQ's to build: ask its API
(``Job.key_for``, ``Queue.key``), never spell them.
"""

PREFIX = "workit"

# Hashes and lists of one submission: the record, its journey, its job's lock.


def submission(submission_id: str) -> str:
    return f"{PREFIX}:submission:{submission_id}"


def journey(submission_id: str) -> str:
    """List of JSON events, oldest first (app/submissions.py caps it)."""
    return f"{PREFIX}:submission:{submission_id}:journey"


def lock(submission_id: str) -> str:
    """The job's per-submission lock (jobs/gif_sender.py)."""
    return f"{PREFIX}:submission:{submission_id}:lock"


# Sorted set of submissions not yet sent or failed, scored by creation time: what
# the sweeper looks through.
PENDING = f"{PREFIX}:submissions:pending"


def alert(job_id: str) -> str:
    """A dead job's red flag, or a setup flag's (jobs/alerts.py): raised once."""
    return f"{PREFIX}:alert:{job_id}"


# Counters and histograms for /metrics, one hash shared by every process.
METRICS = f"{PREFIX}:metrics"
# The small write that goes before WAIT on the same connection (app/ops/replication.py).
REPLICATION_PROBE = f"{PREFIX}:replication:probe"
# Which cron scheduler leads (jobs/runtime/cron_scheduler.py).
CRON_LEADER = f"{PREFIX}:cron:leader"
# Flask-Limiter's prefix for its counters (app/extensions.py).
RATE_LIMITS = PREFIX
