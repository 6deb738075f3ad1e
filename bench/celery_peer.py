"""Celery running Work-It's own email job, for bench/peers.py: the peer a reader would
pick instead of RQ.

The task calls ``jobs.gif_sender.send_gif_email`` itself (lock, flag, send over the
kept Flask-Mail connection, `sent`), inside the Flask app that each prefork child
builds once after its fork, as the pool's workers do. Set up as a careful Celery user
would for this job: a task acknowledged after it ran (``acks_late``), one message
fetched at a time, no result backend. Gossip, mingle and heartbeats are off on the
command line (bench/peers.py), which only makes Celery cheaper.

    celery -A bench.celery_peer worker -P prefork -c 4 -Q peers
"""

import os

from celery import Celery
from celery.signals import worker_init

QUEUE = "peers"

celery = Celery("peers", broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
celery.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

_app = None


@worker_init.connect
def _build_app(**_) -> None:
    """Built once in the parent before it forks, as the pool builds it: every child
    inherits it ready-made and opens its own Redis and SMTP connections on first use."""
    global _app
    from app import create_app

    _app = create_app()


@celery.task(name="send_gif_email")
def send_gif_email(submission_id: str) -> str:
    from jobs.gif_sender import send_gif_email as job

    with _app.app_context():
        return job(submission_id)
