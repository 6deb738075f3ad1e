"""Every server the tests start lives here, and every fixture stops what it starts.

Real things only: a throwaway redis-server on a free port, an aiosmtpd sink,
real RQ workers (each a thin fixture around harness/, which the benchmarks share),
Debian's Chromium. Giphy is the one fake (a local HTTP server shaped like the
real API).
"""

import json
import os
import re
import threading
import time
from pathlib import Path

import pytest
import rq.worker.base
from redis import Redis
from rq import Queue
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

import jobs.worker
from app import create_app
from app.extensions import mail
from app.ops import redis_connection
from harness.chromium import CHROMIUM, CHROMIUM_ARGS
from harness.devstack import DevStack
from harness.faulty_smtp_sink import FaultySmtpSink
from harness.ports import free_port
from harness.redis_server import RedisServer
from harness.sentinel import FailoverSet
from harness.worker_processes import WorkerProcesses, process_env
from jobs import QUEUES
from jobs.runtime.tuning import worker_class as worker_class_for
from jobs.worker import AppJob

# -- the test process ------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def keep_pytests_own_name():
    """An in-process RQ worker (run_jobs) retitles its process `rq:worker:...` through
    setproctitle; the tests' own pytest must keep its name, or the lesson's
    `pkill -f '^rq:worker:'` would take it for a worker and kill it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rq.worker.base, "setprocname", lambda title: None)
        yield


# -- parallel and serial runs (make test) --------------------------------------


def pytest_addoption(parser):
    parser.addoption(
        "--serial",
        choices=("include", "exclude", "only"),
        default="include",
        help="tests marked serial: run them with the rest (include, the default), leave "
        "them out (exclude: make test's parallel run) or run only them (only: its second, "
        "one-process run)",
    )


def select_serial(config, items) -> None:
    """`--serial`: deselect (never skip) the serial tests or all the others."""
    keep = {"include": None, "exclude": False, "only": True}[config.getoption("serial")]
    if keep is None:
        return
    chosen = [item for item in items if ("serial" in item.keywords) == keep]
    dropped = [item for item in items if ("serial" in item.keywords) != keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = chosen


def pytest_runtest_setup(item):
    """Serial tests must not share the machine with other test processes (pyproject.toml's
    markers say why), so under pytest -n they fail rather than run."""
    if "serial" in item.keywords and os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.fail(
            "a serial test cannot run under pytest -n: add --serial=exclude and run the "
            "serial tests apart with --serial=only, as make test does",
            pytrace=False,
        )


# -- browser ---------------------------------------------------------------


def pytest_collection_modifyitems(config, items):
    """Serial or not (--serial, above); slow tests first, so that pytest-xdist
    starts the long waits early rather than ending on one; browser tests need
    Debian's Chromium, and outside CI they skip if it is missing."""
    select_serial(config, items)
    items.sort(key=lambda item: "slow" not in item.keywords)  # stable: order kept within
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


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One redis-server of the tests' own for the session (harness/redis_server.py)."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server) -> str:
    return redis_server.url


@pytest.fixture
def redis(redis_server, redis_url):
    client = Redis.from_url(redis_url)
    client.flushall()
    try:
        yield client
    finally:
        client.flushall()
        client.close()


@pytest.fixture
def restartable_redis(tmp_path):
    """A redis-server of the test's own, with the append-only file on and synced on
    every write (as bin/redis runs it), that the test may stop, or kill, and start
    again on the same port and data directory."""
    with RedisServer(tmp_path, appendfsync="always") as server:
        yield server


@pytest.fixture
def failover_set(tmp_path):
    """A primary, two replicas and three sentinels of the test's own, on free ports
    (harness/sentinel.py); its ``url`` is the redis+sentinel:// REDIS_URL."""
    with FailoverSet(tmp_path / "failover") as servers:
        yield servers


@pytest.fixture
def partitioned_set(tmp_path, request):
    """A failover_set whose first primary everyone reaches through a TcpProxy, its
    ``proxy``, that the test cuts for a network partition (harness/sentinel.py). An
    indirect parameter gives FailoverSet other keyword arguments, such as
    ``{"min_replicas_to_write": 0}`` to start it without that guard."""
    options = getattr(request, "param", {})
    with FailoverSet(tmp_path / "partition", proxied_primary=True, **options) as servers:
        yield servers


# -- smtp ------------------------------------------------------------------


@pytest.fixture
def smtp_sink():
    """An aiosmtpd sink with knobs for faults (harness/faulty_smtp_sink.py)."""
    with FaultySmtpSink() as sink:
        yield sink


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
            redis_connection.close(app.extensions["redis"])  # and its sentinels' clients
            if hasattr(app, "redis_conn"):
                redis_connection.close(app.redis_conn)  # rq-dashboard's own client
        if mail.kept.host is not None:  # this thread's kept SMTP connection, to this
            mail.kept.host.close()  # test's sink: no later test, nor the exit, finds it open
            mail.kept.host = None


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


@pytest.fixture(params=["on", "off"], ids=["tuned", "plain"])
def worker_tuning(request) -> str:
    """WORKER_TUNING: every job test runs on the tuned worker and on the plain one."""
    return request.param


@pytest.fixture
def run_jobs(app, redis, worker_tuning, monkeypatch):
    """Drain every queue in-process, burst mode, inside the test's app: the pool's own
    worker class (jobs/runtime/tuning.py), tuned and plain."""
    monkeypatch.setattr(jobs.worker, "_app", app)
    # pytest itself is the worker's process here, and its memory is not the jobs' doing.
    monkeypatch.setitem(app.config, "WORKER_MAX_MEMORY_MB", 1 << 20)
    worker_class = worker_class_for(worker_tuning)

    def run() -> None:
        queues = [Queue(name, connection=redis, job_class=AppJob) for name in QUEUES]
        worker = worker_class(queues, connection=redis, job_class=AppJob)
        with app.app_context():
            worker.work(burst=True)

    return run


@pytest.fixture
def rq_workers(app_config, redis):
    """Real worker processes of the Procfile's command (harness/worker_processes.py)."""
    with WorkerProcesses(process_env(app_config)) as workers:
        yield workers


# -- a live web server for the browser ---------------------------------------


@pytest.fixture
def live_app(app):
    """The app served for real (Werkzeug, threaded) on a free port; yields its base URL."""
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
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
    """`make dev` in a fresh-clone look-alike on free ports (harness/devstack.py)."""
    stack = DevStack(tmp_path / "work-it")
    try:
        yield stack
    finally:
        stack.stop_all()
