"""/metrics: the queue as Prometheus sees it, in its text format (prometheus_client).

Three kinds of numbers, each kept where it can be right however many processes run:

- What happens in the workers (runs by outcome, how long they took and waited, red
  flags) and what the web accepts (submissions): counted in Redis, in one hash, by the
  process where it happens. Any number of workers, pools and machines add to the same
  totals, a worker that dies loses none, and every web process serves the same figures.
  (prometheus_client's multiprocess mode would need each machine's workers scraped on
  their own; our workers serve no HTTP.)
- What Redis holds now (waiting jobs, the oldest one's age, workers, scheduled and
  failed jobs): read from Redis at scrape time.
- The web's own requests: prometheus_client's counters in the process that served
  them, in its multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set (gunicorn's
  processes, app/ops/gunicorn_conf.py), so a scrape sees all of them whichever one answers.
"""

import functools
import json
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import NamedTuple

from flask import Blueprint, Flask, Response, current_app, g, has_app_context, request
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq.utils import utcparse

from app import keys, queues
from app.extensions import get_redis

# Mail that has waited this long is late: the MailQueueLate alert's threshold
# (ops/prometheus/alerts.yml) and the doctor's (app/ops/doctor.py).
LATE_MAIL_SECONDS = 60

# Seconds; a run takes the mailer's 5 s delay plus Giphy and SMTP, a wait can be minutes.
RUN_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 7.5, 10, 15, 30, 60)
WAIT_BUCKETS = (0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 3600)

# Counted in Redis: name -> (help, label names, histogram buckets or None for a counter).
KEPT_IN_REDIS = {
    "workit_submissions_total": ("Submissions accepted.", ("delivery",), None),
    "workit_jobs_total": ("Finished runs of the email job.", ("queue", "outcome"), None),
    "workit_job_duration_seconds": ("How long a run took.", ("queue",), RUN_BUCKETS),
    "workit_job_wait_seconds": (
        "From enqueue (or its due time) to the start of the run.",
        ("queue",),
        WAIT_BUCKETS,
    ),
    "workit_red_flags_total": ("Red flags raised (alert emails).", ("kind",), None),
}


# -- counting, where it happens ------------------------------------------------------


def enabled() -> bool:
    """METRICS_ENABLED, where an app is at hand (RQ may run a callback outside one)."""
    return not has_app_context() or current_app.config["METRICS_ENABLED"]


def count(redis, name: str, amount: int = 1, **labels: str) -> None:
    """Add to a counter kept in Redis; ``redis`` may be a pipeline (then it goes with
    the caller's writes, in its transaction)."""
    if enabled():
        redis.hincrby(keys.METRICS, _field(name, tuple(labels.items())), amount)


def observe(redis, name: str, seconds: float, **labels: str) -> None:
    """Add one observation to a histogram kept in Redis: one to its bucket, and its
    microseconds to its sum (whole numbers: HINCRBY is cheaper than HINCRBYFLOAT)."""
    if not enabled():
        return
    buckets, key = KEPT_IN_REDIS[name][2], tuple(labels.items())
    le = next((str(b) for b in buckets if seconds <= b), "+Inf")
    redis.hincrby(keys.METRICS, _field(name, key, ("le", le)), 1)
    redis.hincrby(keys.METRICS, _field(name, key, ("part", "sum_us")), round(seconds * 1_000_000))


def count_run(pipe, job: Job | None, outcome: str) -> None:
    """Queue a run's outcome, its duration so far and its wait in ``pipe``: in the
    job's own transaction where it has one (a sent email is counted if and only if
    `sent` is written, and with Redis syncing every write to disk, no extra sync)."""
    if job is None or not enabled():
        return  # WORKIT_DELIVERY=now runs no job
    queue = job.origin
    count(pipe, "workit_jobs_total", queue=queue, outcome=outcome)
    started, enqueued = _aware(job.started_at), _aware(job.enqueued_at)
    if started:
        seconds = (datetime.now(UTC) - started).total_seconds()
        observe(pipe, "workit_job_duration_seconds", seconds, queue=queue)
    if started and enqueued:
        seconds = max(0.0, (started - enqueued).total_seconds())
        observe(pipe, "workit_job_wait_seconds", seconds, queue=queue)


def _aware(moment: datetime | None) -> datetime | None:
    """RQ keeps naive UTC datetimes."""
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


@functools.lru_cache(maxsize=4096)
def _field(name: str, labels: tuple, part: tuple = ()) -> str:
    """The hash field of one series (and bucket): JSON, so that any label value fits."""
    return json.dumps([name, dict(sorted(labels)), dict([part]) if part else {}])


# -- reading, at scrape time ----------------------------------------------------------


class RedisCollector(Collector):
    """Everything kept in or read from Redis, collected when Prometheus scrapes."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def collect(self) -> Iterator:
        up = GaugeMetricFamily("workit_redis_up", "1 if this scrape reached Redis.")
        try:
            families = [*_queue_families(self.redis), *_kept_families(self.redis)]
        except RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families


def _queue_families(redis: Redis) -> list:
    depth = GaugeMetricFamily("workit_queue_depth", "Jobs waiting.", labels=["queue"])
    latency = GaugeMetricFamily(
        "workit_queue_latency_seconds",
        "Age of the oldest job waiting (0 when none waits).",
        labels=["queue"],
    )
    failed = GaugeMetricFamily(
        "workit_failed_jobs", "Dead jobs: failed with no retry left.", labels=["queue"]
    )
    scheduled = 0
    for stats in queue_stats(redis):
        depth.add_metric([stats.name], stats.depth)
        latency.add_metric([stats.name], stats.latency)
        # cleanup=False: a scrape only reads (the workers' maintenance cleans up).
        dead = FailedJobRegistry(stats.name, connection=redis).get_job_count(cleanup=False)
        failed.add_metric([stats.name], dead)
        waiting = ScheduledJobRegistry(stats.name, connection=redis)
        scheduled += waiting.get_job_count(cleanup=False)
    workers = GaugeMetricFamily("workit_workers", "Live workers by state.", labels=["state"])
    for state, number in worker_states(redis).items():
        workers.add_metric([state], number)
    return [
        depth,
        latency,
        failed,
        workers,
        GaugeMetricFamily("workit_scheduled_jobs", "Jobs waiting for their time.", scheduled),
    ]


class QueueStats(NamedTuple):
    name: str
    depth: int
    latency: float  # seconds the oldest waiting job has waited; 0 when none waits


def queue_stats(redis: Redis, now: float | None = None) -> list[QueueStats]:
    """Each queue's waiting jobs and the age of its oldest, the number a person feels
    as "my email is late". RQ takes jobs from the head of the list: the oldest."""
    now = time.time() if now is None else now
    stats = []
    for name, depth in queues.depths(redis).items():
        oldest = _oldest_enqueued_at(redis, Queue(name, connection=redis))
        latency = max(0.0, now - oldest.timestamp()) if oldest else 0.0
        stats.append(QueueStats(name, depth, latency))
    return stats


def _oldest_enqueued_at(redis: Redis, queue: Queue) -> datetime | None:
    """The first job at the head that still exists (a deleted job leaves its id)."""
    for job_id in redis.lrange(queue.key, 0, 9):
        stamp = redis.hget(Job.key_for(job_id.decode()), "enqueued_at")
        if stamp:
            return utcparse(stamp.decode()).replace(tzinfo=UTC)
    return None


def worker_states(redis: Redis) -> dict[str, int]:
    """Live workers: busy with a job, suspended (`rq suspend`), or idle (waiting)."""
    states = {"busy": 0, "idle": 0, "suspended": 0}
    for worker in Worker.all(connection=redis):
        state = worker.get_state()
        states[state if state in states else "idle"] += 1
    return states


def _kept_families(redis: Redis) -> list:
    """The counters and histograms in the hash, summed into Prometheus's shapes."""
    values: dict[tuple, dict] = defaultdict(dict)
    for raw_field, raw_value in redis.hgetall(keys.METRICS).items():
        name, labels, part = json.loads(raw_field)
        values[(name, tuple(sorted(labels.items())))][json.dumps(part)] = float(raw_value)
    families = []
    for name, (doc, label_names, buckets) in KEPT_IN_REDIS.items():
        short = name.removesuffix("_total")
        if buckets is None:
            family = CounterMetricFamily(short, doc, labels=label_names)
        else:
            family = HistogramMetricFamily(name, doc, labels=label_names)
        for (found, labels), parts in values.items():
            if found != name:
                continue
            label_values = [dict(labels).get(n, "") for n in label_names]
            if buckets is None:
                family.add_metric(label_values, parts.get("{}", 0))
            else:
                family.add_metric(label_values, *_cumulative(parts, buckets))
        families.append(family)
    return families


def _cumulative(parts: dict[str, float], buckets: tuple) -> tuple[list, float]:
    running, out = 0.0, []
    for le in [*map(str, buckets), "+Inf"]:
        running += parts.get(json.dumps({"le": le}), 0)
        out.append((le if le == "+Inf" else str(float(le)), running))
    return out, parts.get(json.dumps({"part": "sum_us"}), 0) / 1_000_000


# -- the web's own requests -------------------------------------------------------------

disable_created_metrics()  # no `_created` series beside each counter: half the lines
HTTP_REQUESTS = Counter(
    "workit_http_requests_total", "HTTP requests answered.", ["endpoint", "status"]
)
HTTP_DURATION = Histogram(
    "workit_http_request_duration_seconds", "Time to answer a request.", ["endpoint"]
)


def _count_request(response: Response) -> Response:
    endpoint = request.url_rule.endpoint if request.url_rule else "none"
    HTTP_REQUESTS.labels(endpoint, str(response.status_code)).inc()
    started = g.get("request_started")
    if started is not None:
        HTTP_DURATION.labels(endpoint).observe(time.perf_counter() - started)
    return response


def _process_registry() -> CollectorRegistry:
    """Every web process's requests (multiprocess mode), or this process's alone."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    """Behind the dashboard's sign-in when it has a password (app/dashboard.py)."""
    registry = CollectorRegistry()
    registry.register(RedisCollector(get_redis()))
    # The classic text format (0.0.4), which every Prometheus 2 and 3 reads.
    text = generate_latest(registry) + generate_latest(_process_registry())
    return Response(text, content_type=CONTENT_TYPE_PLAIN_0_0_4)


def init_app(app: Flask) -> None:
    if app.config["METRICS_ENABLED"]:
        app.after_request(_count_request)
        app.register_blueprint(bp)
