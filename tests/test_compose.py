"""docker-compose.yml, the Dockerfile and the locks, checked against the code.

No Docker engine runs here, so the files are parsed; what can run without one
does: the web service's gunicorn command and its healthcheck, against the test Redis.
"""

import importlib.metadata
import re
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from gunicorn.config import Config as GunicornConfig
from honcho.environ import parse_procfile
from packaging.requirements import Requirement
from rq import Queue, Worker

from app import config
from harness.polling import wait_for
from harness.ports import free_port
from harness.worker_processes import process_env
from jobs import QUEUES

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
PROCFILE = parse_procfile((ROOT / "Procfile").read_text()).processes
DOCKERFILE = (ROOT / "Dockerfile").read_text()
PYPROJECT = (ROOT / "pyproject.toml").read_text()
DEV_TOOLS = {"pytest", "ruff", "playwright", "responses", "port-for", "websocket-client"}


def shell_words(command: list[str] | str) -> list[str]:
    """The words a command runs: `sh -c '...'` unwrapped, `a && exec b` reduced to b."""
    if isinstance(command, list) and command[:2] == ["sh", "-c"]:
        command = command[2]
    if isinstance(command, str):
        command = shlex.split(command.split("&&")[-1])
    return [word for word in command if word != "exec"]


def pinned(lock: str) -> dict[str, str]:
    """name -> version of each pin in a lock file (names normalised as pip does)."""
    pins = {}
    for line in (ROOT / lock).read_text().splitlines():
        if line and not line.startswith(("#", "-r")):
            name, version = line.split("==")
            pins[normalise(name)] = version
    return pins


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_compose_runs_every_procfile_process():
    assert set(PROCFILE) <= set(SERVICES)


# Read by a library, not by app/config.py: prometheus_client's multiprocess folder.
LIBRARY_SETTINGS = {"PROMETHEUS_MULTIPROC_DIR"}


def test_compose_sets_only_settings_the_app_reads():
    for name, service in SERVICES.items():
        assert set(service.get("environment", {})) <= set(config.SETTINGS) | LIBRARY_SETTINGS, name


def test_published_ports_are_bound_to_loopback():
    for service in SERVICES.values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port


# -- web: gunicorn -----------------------------------------------------------------


def test_web_runs_the_app_factory_under_gunicorn_not_the_dev_server():
    command = SERVICES["web"]["command"]
    args = GunicornConfig().parser().parse_args(command[1:])  # gunicorn's own flags
    assert command[0] == "gunicorn"
    assert args.args == ["app:create_app()"]
    assert args.worker_class in {"sync", "gthread"} and args.workers >= 1
    for name, service in SERVICES.items():
        assert "flask" not in shell_words(service.get("command", [])), name


def test_the_image_runs_the_web_command_by_default():
    cmd = re.search(r"^CMD (.+)$", DOCKERFILE, re.MULTILINE).group(1)
    assert yaml.safe_load(cmd) == SERVICES["web"]["command"]


@pytest.fixture
def gunicorn(app_config, redis):
    """The web service's own command line on a free local port; yields the base URL."""
    port = free_port()
    command = [Path(sys.executable).parent / "gunicorn", *SERVICES["web"]["command"][1:]]
    command[command.index("--bind") + 1] = f"127.0.0.1:{port}"
    proc = subprocess.Popen(
        [*command, "--no-control-socket"], cwd=ROOT, env=process_env(app_config)
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(url), 30, "gunicorn to answer")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "/healthz", timeout=2)
    except urllib.error.HTTPError:
        return True  # a 503 is an answer
    except OSError:
        return False
    return True


@pytest.fixture
def registered_worker(redis) -> Worker:
    worker = Worker([Queue(name, connection=redis) for name in QUEUES], connection=redis)
    worker.register_birth()
    return worker


def run_healthcheck(url: str) -> int:
    """The web service's healthcheck, pointed at ``url`` instead of the container's port."""
    test = SERVICES["web"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    code = test[3].replace("http://127.0.0.1:5000", url)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30).returncode


def test_web_healthcheck_passes_only_with_a_live_worker(gunicorn, registered_worker, redis):
    assert run_healthcheck(gunicorn) == 0

    registered_worker.register_death()

    assert run_healthcheck(gunicorn) == 1


# -- the image and the locks ---------------------------------------------------------


def test_the_image_installs_the_runtime_lock_only():
    installs = [line for line in DOCKERFILE.splitlines() if "pip install" in line]
    assert installs == [
        "RUN pip install --no-cache-dir -r requirements.lock",
        "RUN pip install --no-cache-dir --no-deps -e .",
    ]
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in (".env", ".venv/", "var/", "tests/", "harness/", "bench/", "requirements-dev.lock"):
        assert path in ignored, path


def test_the_runtime_lock_has_no_test_or_lint_tools():
    runtime, dev = pinned("requirements.lock"), pinned("requirements-dev.lock")
    assert not {name for name in runtime if name in DEV_TOOLS or name.startswith("pytest")}
    assert DEV_TOOLS <= set(dev)
    assert not set(runtime) & set(dev)
    assert (ROOT / "requirements-dev.lock").read_text().count("-r requirements.lock\n") == 1


def dependencies(section: str) -> list[Requirement]:
    block = re.search(rf"^{section} = \[\n(.*?)^\]", PYPROJECT, re.MULTILINE | re.DOTALL)
    return [Requirement(item) for item in re.findall(r'^\s+"([^"]+)"', block.group(1), re.M)]


def test_every_runtime_dependency_and_theirs_is_in_the_runtime_lock():
    """Walked through the installed packages' own metadata: nothing the app needs at
    run time may be pinned only in the dev lock, or the image would miss it."""
    runtime = pinned("requirements.lock")
    todo, seen = [req.name for req in dependencies("dependencies")], set()
    while todo:
        name = normalise(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        for spec in importlib.metadata.requires(name) or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    assert seen - {"setuptools"} <= set(runtime)  # setuptools ships with the base image
    assert {"gunicorn", "psutil", "setproctitle"} <= seen


def test_every_test_dependency_is_in_the_dev_lock():
    dev = pinned("requirements-dev.lock")
    assert {normalise(req.name) for req in dependencies("test")} <= set(dev)


def test_the_venv_runs_the_pinned_versions():
    for name, version in {**pinned("requirements.lock"), **pinned("requirements-dev.lock")}.items():
        assert importlib.metadata.version(name) == version, name


# -- redis -----------------------------------------------------------------------


def test_redis_keeps_an_fsynced_append_only_file_on_a_named_volume():
    redis = SERVICES["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--appendfsync always" in command
    volume, target = redis["volumes"][0].split(":")
    assert target == "/data" and volume in COMPOSE["volumes"]
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_the_app_services_wait_for_a_healthy_redis():
    for name in ("web", "worker", "scheduler"):
        assert SERVICES[name]["depends_on"]["redis"]["condition"] == "service_healthy", name


# -- worker and scheduler: the Procfile's lines ------------------------------------------


def module_and_queues(words: list[str]) -> tuple[str, list[str]]:
    """`python -m MODULE ... QUEUE...`: the module and the trailing queue names."""
    queues = []
    for word in reversed(words):
        if word.startswith("-") or "$" in word or "{" in word or word.isdigit():
            break
        queues.insert(0, word)
    return words[words.index("-m") + 1], queues


def test_compose_worker_runs_the_procfile_worker_pool_and_queues():
    compose = shell_words(SERVICES["worker"]["command"])
    procfile = shell_words(PROCFILE["worker"])
    assert module_and_queues(compose) == module_and_queues(procfile)
    assert module_and_queues(compose) == ("jobs.runtime.pool", list(QUEUES))
    assert "REDIS_URL" in compose[compose.index("--url") + 1]
    assert compose[compose.index("--workers") + 1] == procfile[procfile.index("--workers") + 1]
    assert "REDIS_URL" in SERVICES["worker"]["environment"]


def test_compose_scheduler_runs_the_procfile_scheduler():
    compose = shell_words(SERVICES["scheduler"]["command"])
    procfile = shell_words(PROCFILE["scheduler"])
    assert compose[:3] == procfile[:3] == ["python", "-m", "jobs.runtime.cron_scheduler"]
    assert "REDIS_URL" in compose[compose.index("--url") + 1]


def test_the_procfile_leaves_the_redis_address_to_the_code():
    """No URL spelled in the Procfile: the pool and the scheduler read REDIS_URL, else
    app/config.py's one default."""
    for line in (PROCFILE["worker"], PROCFILE["scheduler"]):
        assert "redis://" not in line and "--url" not in line


def test_the_dev_and_compose_sinks_cannot_be_quit_over_http():
    """MailCatcher's DELETE / stops the sink; make dev's and compose's refuse it."""
    assert "--no-quit" in shell_words(PROCFILE["mailcatcher"])
    assert "--no-quit" in shell_words(SERVICES["mailcatcher"]["command"])


def test_the_dev_sink_keeps_a_bounded_mailbox():
    """On a shared laptop the sink's file must not grow without end: the newest 10,000."""
    words = shell_words(PROCFILE["mailcatcher"])
    assert words[words.index("--messages-limit") + 1] == "10000"


# -- prometheus and alertmanager (ops/) ------------------------------------------------

PROMETHEUS_YML = yaml.safe_load((ROOT / "ops/prometheus/prometheus.yml").read_text())
ALERTMANAGER_YML = yaml.safe_load((ROOT / "ops/alertmanager/alertmanager.yml").read_text())


def mounts(name: str) -> dict[str, str]:
    """A service's volumes: target -> `source[:mode]`."""
    found = {}
    for volume in SERVICES[name]["volumes"]:
        source, target, *mode = volume.split(":")
        found[target] = ":".join([source, *mode])
    return found


def flag(words: list[str], name: str) -> str:
    values = [word.split("=", 1)[1] for word in words if word.startswith(f"--{name}=")]
    assert len(values) == 1, (name, words)
    return values[0]


def test_prometheus_and_alertmanager_run_pinned_images_with_ops_configs_read_only():
    for name, image, folder, target in [
        ("prometheus", "prom/prometheus", "prometheus", "/etc/prometheus"),
        ("alertmanager", "prom/alertmanager", "alertmanager", "/etc/alertmanager"),
    ]:
        repository, _, tag = SERVICES[name]["image"].partition(":")
        assert repository == image and re.fullmatch(r"v\d+\.\d+\.\d+", tag), name
        assert mounts(name)[target] == f"./ops/{folder}:ro", name
        assert (ROOT / "ops" / folder / f"{folder}.yml").is_file()


def test_prometheus_and_alertmanager_publish_their_ports_on_loopback_only():
    assert SERVICES["prometheus"]["ports"] == ["127.0.0.1:9090:9090"]
    assert SERVICES["alertmanager"]["ports"] == ["127.0.0.1:9093:9093"]


def test_prometheus_runs_the_mounted_config_after_writing_the_dashboard_password():
    """prometheus.yml's password_file is the file the entrypoint's shell writes from
    $DASHBOARD_PASSWORD, which comes from the .env the app services read."""
    entrypoint = SERVICES["prometheus"]["entrypoint"]
    assert entrypoint[:2] == ["sh", "-c"]
    words = shell_words(entrypoint)
    assert words[0] == "/bin/prometheus"
    assert flag(words, "config.file") == "/etc/prometheus/prometheus.yml"
    assert flag(words, "storage.tsdb.path") in mounts("prometheus")
    (scrape,) = PROMETHEUS_YML["scrape_configs"]
    password_file = scrape["basic_auth"]["password_file"]
    assert f'printf %s "$$DASHBOARD_PASSWORD" > {password_file} &&' in entrypoint[2]
    assert password_file.startswith(flag(words, "storage.tsdb.path") + "/")  # writable there
    assert SERVICES["prometheus"]["env_file"] == SERVICES["web"]["env_file"]
    assert scrape["basic_auth"]["username"] == config.SETTINGS["DASHBOARD_USERNAME"][1]


def test_prometheus_scrapes_the_web_service_on_the_port_gunicorn_binds():
    (scrape,) = PROMETHEUS_YML["scrape_configs"]
    assert scrape["job_name"] == "workit" and scrape.get("metrics_path", "/metrics") == "/metrics"
    (target,) = [t for group in scrape["static_configs"] for t in group["targets"]]
    host, port = target.split(":")
    command = SERVICES["web"]["command"]
    assert host == "web" and command[command.index("--bind") + 1] == f"0.0.0.0:{port}"
    assert "web" in SERVICES["prometheus"]["depends_on"]


def test_prometheus_alerts_through_the_alertmanager_service():
    (alertmanagers,) = PROMETHEUS_YML["alerting"]["alertmanagers"]
    targets = [t for group in alertmanagers["static_configs"] for t in group["targets"]]
    assert targets == ["alertmanager:9093"]  # the service, on the port it publishes
    assert "alertmanager" in SERVICES["prometheus"]["depends_on"]
    assert flag(SERVICES["alertmanager"]["command"], "config.file") == (
        "/etc/alertmanager/alertmanager.yml"
    )


def test_alertmanager_mails_through_the_mail_catcher_as_the_app_does():
    smtp = ALERTMANAGER_YML["global"]
    app_env = COMPOSE["x-app"]["environment"]
    assert smtp["smtp_smarthost"] == f"{app_env['MAIL_SERVER']}:{app_env['MAIL_PORT']}"
    assert smtp["smtp_require_tls"] is False  # the mail catcher speaks plain SMTP
    assert "mailcatcher" in SERVICES["alertmanager"]["depends_on"]
