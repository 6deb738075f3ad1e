"""gunicorn's settings for the web app (docker-compose.yml: --config python:app.ops.gunicorn_conf).

Each gunicorn process counts its own requests; prometheus_client's multiprocess mode
writes them to files in PROMETHEUS_MULTIPROC_DIR, and /metrics adds them all up
(app/ops/metrics.py), whichever process answers the scrape. The folder is emptied when
gunicorn starts, so numbers from an earlier run do not add to this one's. Put it on
a tmpfs (docker-compose.yml does): every count is a write to a mapped file, and on
a disk those writes compete with Redis's fsyncs.
"""

import os
import shutil

from prometheus_client import multiprocess


def on_starting(server) -> None:
    """Empty the folder (it may be a tmpfs mount point: emptied, not removed)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)
        for entry in os.scandir(folder):
            if entry.is_dir():
                shutil.rmtree(entry.path)
            else:
                os.remove(entry.path)


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
