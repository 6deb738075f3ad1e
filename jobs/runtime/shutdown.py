"""How a worker stops: its email job finishes within a grace, or goes back on its queue.

`docker stop` sends SIGTERM, then SIGKILL 10 s later; the pool (jobs/runtime/pool.py) passes
the stop to each worker as SIGINT. RQ's own answer, a warm shutdown, waits for the
whole job: up to its timeout (37 s for the email job by default), so a platform's
SIGKILL could land in the middle of a send, which leaves the email unconfirmed or
sends it twice. Instead, a worker asked to stop gives the job it is running
WORKER_STOP_GRACE_SECONDS (app/config.py), then:

- a job still before its send (waiting for its lock, looking up the GIF, in the
  mailer's delay) is handed back: HandedBack is raised in it, the job releases its
  lock, its failure callback takes back the attempt (jobs/gif_sender.py), and the
  worker puts the job back at the front of its queue, neither failed nor retried; the
  next worker runs it.
  Nothing was sent, so nothing is lost or doubled;
- a job that has started talking to the mail server (the mail connection announces it,
  app/ops/mail_connection.py) is never cut off: the worker waits for it, which
  MAIL_TIMEOUT_SECONDS bounds;
- a job not listed in HANDED_BACK_ON_STOP (the sweeper, the alerts) gets RQ's warm
  shutdown as before: it finishes.

A second stop signal a second or more after the first (RQ's cold shutdown) hands the
job back at once, and still waits for a send under way.

Why the pool's stops took 30 s (issue 28): each worker runs RQ's pubsub thread, and a
signal sent to a process may be delivered to any of its threads. CPython runs the
Python handler in the main thread only, and when the signal landed on the pubsub
thread, the main thread, blocked in its wait for a job (BLPOP, up to 30 s), was not
woken: the stop went unheard until the wait ended. So every thread a worker starts
blocks SIGINT and SIGTERM (``stop_signals_blocked``): the kernel then hands them to
the main thread, whose blocking read is interrupted at once.

The worker's half leans on RQ members listed in OVERRIDDEN, with the parameters used;
tests/jobs/runtime/test_shutdown.py fails, naming the member, when an RQ upgrade changes one.
"""

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from rq.job import Job
from rq.queue import Queue
from rq.worker.base import BaseWorker

from app.ops.mail_connection import about_to_send
from jobs.failures import HandedBack

__all__ = ["HandedBack", "HANDED_BACK_ON_STOP", "running", "sending", "stop_signals_blocked"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Sent by the grace's timer to the worker's main thread when the grace is over.
GRACE_OVER = signal.SIGUSR1
# Two stop signals this close together are one stop (RQ's rule: the pool and the
# terminal, or `docker stop` and a process-group signal, may both send one).
SAME_STOP_SECONDS = 1.0
# The worker members of RQ overridden below -> the parameters relied on.
OVERRIDDEN: dict[str, tuple[str, ...]] = {
    "subscribe": ("self",),
    "request_stop": ("self", "signum", "frame"),
    "request_force_stop": ("self", "signum", "frame"),
    "handle_exception": ("self", "job", "exc_info"),
    "handle_job_failure": ("self", "job", "queue", "started_job_registry", "exc_string"),
    "cleanup_execution": ("self", "job", "pipeline"),
}


# The jobs a stopping worker may hand back until they start sending: each must undo
# the attempt it began when it meets HandedBack (jobs/failures.py does, for the email).
HANDED_BACK_ON_STOP = frozenset({"jobs.gif_sender.send_gif_email"})


def sending(sender: Any = None, **extra: Any) -> None:
    """The job's point of no return, right before it talks to the mail server: from here
    a stopping worker waits for it. Raises HandedBack instead if the grace is over.
    Outside a worker (a web request that sends itself), it does nothing."""
    _run.start_sending()


about_to_send.connect(sending)


@contextlib.contextmanager
def stop_signals_blocked() -> Iterator[None]:
    """Block SIGINT and SIGTERM in this thread for the block: a thread started inside
    inherits the mask and keeps it, so the stop signals go to the main thread."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _Run:
    """What this worker process is running, as far as stopping goes. Its main thread
    runs one job at a time, and the signal handlers run there too."""

    def __init__(self) -> None:
        self.job_id: str | None = None
        self.may_hand_back = False  # an opted-in job, not sending yet
        self.in_send = False
        self.deadline: float | None = None  # once asked to stop: when the grace is over
        self.handed_back: str | None = None  # the job just handed back, for the worker
        self.timer: threading.Timer | None = None

    def begin(self, job: Job) -> None:
        self.job_id, self.in_send = job.id, False
        self.may_hand_back = job.func_name in HANDED_BACK_ON_STOP
        self.watch()  # asked to stop before the job began: the same grace

    def end(self) -> None:
        self.job_id, self.may_hand_back, self.in_send = None, False, False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def start_sending(self) -> None:
        if self.job_id is None:
            return
        if self.may_hand_back and self.grace_over():
            self.hand_back()
        self.may_hand_back, self.in_send = False, True

    def stop(self, grace_seconds: float) -> None:
        """The worker was asked to stop: the grace starts now (once)."""
        if self.deadline is None:
            self.deadline = time.monotonic() + grace_seconds

    def grace_over(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def watch(self) -> None:
        """Hand the job back now if its grace is over, else when it will be."""
        if not self.may_hand_back or self.deadline is None:
            return
        if self.grace_over():
            self.hand_back()
        elif self.timer is None:
            signal.signal(GRACE_OVER, self.on_grace_over)
            main = threading.main_thread().ident
            self.timer = threading.Timer(
                self.deadline - time.monotonic(), signal.pthread_kill, (main, GRACE_OVER)
            )
            self.timer.daemon = True
            with stop_signals_blocked():
                self.timer.start()

    def on_grace_over(self, signum: int, frame: Any) -> None:
        if self.may_hand_back and self.grace_over():
            self.hand_back()

    def hand_back(self) -> None:
        self.may_hand_back = False
        self.handed_back = self.job_id
        raise HandedBack("the worker is stopping, and the job had not started sending")


_run = _Run()


@contextlib.contextmanager
def running(job: Job) -> Iterator[None]:
    """Around the job's own code (jobs/worker.py's AppJob.perform): while it runs, a
    stopping worker may hand it back."""
    try:
        _run.begin(job)
        yield
    finally:
        _run.end()


class StopSignalsToMainThread(BaseWorker):
    """RQ's pubsub thread (started by subscribe) blocks the stop signals, so that they
    reach the main thread, however long its wait for a job."""

    def subscribe(self) -> None:
        with stop_signals_blocked():
            super().subscribe()


class HandBackOnStop(StopSignalsToMainThread):
    """A non-forking worker that, asked to stop, gives its job the grace, then hands it
    back (see the module's docstring). ``stop_grace_seconds`` is set by the subclass."""

    stop_grace_seconds: float = 0.0
    _stop_heard_at: float | None = None

    def request_stop(self, signum: int, frame: Any) -> None:
        """RQ's warm shutdown (idle: stop now; busy: stop after the job), and the grace,
        counted from the signal (RQ's part stops the scheduler first, up to a second)."""
        self._stop_heard_at = time.monotonic()
        _run.stop(self.stop_grace_seconds)
        super().request_stop(signum, frame)
        _run.watch()

    def request_force_stop(self, signum: int, frame: Any) -> None:
        """A second stop: the job is handed back now, but a send under way is finished."""
        if self._stop_heard_at and time.monotonic() - self._stop_heard_at < SAME_STOP_SECONDS:
            return
        if _run.in_send:
            self.log.warning("Worker %s: stopping once the email under way is sent", self.name)
            return
        if _run.may_hand_back:
            _run.hand_back()
        super().request_force_stop(signum, frame)

    def handle_exception(self, job: Job, *exc_info) -> None:
        if isinstance(exc_info[1], HandedBack):
            return  # no error: handle_job_failure says where the job went
        super().handle_exception(job, *exc_info)

    def handle_job_failure(
        self, job: Job, queue: Queue, started_job_registry=None, exc_string: str = ""
    ) -> None:
        if _run.handed_back == job.id:
            _run.handed_back = None
            self.hand_back(job, queue)
            return
        super().handle_job_failure(job, queue, started_job_registry, exc_string)

    def hand_back(self, job: Job, queue: Queue) -> None:
        """Out of the started registry and back at the front of its queue, in one
        transaction: not failed, no retry used, nothing lost."""
        with self.connection.pipeline() as pipe:
            pipe.multi()
            self.cleanup_execution(job, pipeline=pipe)
            queue.enqueue_job(job, pipeline=pipe, at_front=True)
            pipe.execute()
        self.log.info(
            "Worker %s: stopping, handed job %s back to %s", self.name, job.id, queue.name
        )
