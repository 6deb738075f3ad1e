"""docker-compose.sentinel.yml over docker-compose.yml, checked as Compose would run them.

No Docker engine runs here, so the two files are parsed and merged as
`docker compose -f docker-compose.yml -f docker-compose.sentinel.yml` merges them (for
the keys they use), and each Redis node's `sh -c` script is read for what it runs:
the config file it writes on first start and the flags it gives redis-server.
"""

import re
import shlex
from pathlib import Path

import yaml
from redis_sentinel_url import parse_sentinel_url

from app import config
from tests.test_compose import LIBRARY_SETTINGS

ROOT = Path(__file__).resolve().parent.parent
BASE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
OVERRIDE = yaml.safe_load((ROOT / "docker-compose.sentinel.yml").read_text())
SENTINEL_URL = "redis+sentinel://sentinel-1:26379,sentinel-2:26379,sentinel-3:26379/workit/0"

# Compose replaces these sequences when a later file sets them; it appends to the others.
REPLACED = {"command", "entrypoint", "test"}


def merge(base, override, key=None):
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for name, value in override.items():
            merged[name] = merge(base[name], value, name) if name in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list) and key not in REPLACED:
        return base + [item for item in override if item not in base]
    return override


COMPOSE = merge(BASE, OVERRIDE)
SERVICES = COMPOSE["services"]
# The app's services: those the main file points at Redis (its x-app anchor).
APP_SERVICES = sorted(
    n for n, s in BASE["services"].items() if "REDIS_URL" in s.get("environment", {})
)

# `[ -f FILE ] || cat > FILE <<EOF ... EOF`: a config file written on first start only.
FIRST_START = re.compile(
    r"\[ -f (?P<path>\S+) \] \|\| cat > (?P=path) <<(?P<q>'?)EOF(?P=q)\n(?P<body>.*?)\nEOF\n", re.S
)


def script(name: str) -> str:
    """The service's `sh -c` script, as the shell gets it ($$ is Compose's escaped $)."""
    command = SERVICES[name].get("command")
    assert isinstance(command, list) and command[:2] == ["sh", "-c"], name
    return command[2].replace("$$", "$")


def runs_redis(name: str) -> bool:
    command = SERVICES[name].get("command")
    return (
        isinstance(command, list) and command[:2] == ["sh", "-c"] and "redis-server" in command[2]
    )


def server_args(name: str) -> list[str]:
    """The arguments of the redis-server the script execs, through the image's entrypoint."""
    text = FIRST_START.sub("", script(name)).replace("\\\n", " ")
    for line in text.splitlines():
        words = shlex.split(line)
        if "redis-server" in words:
            assert words[:3] == ["exec", "docker-entrypoint.sh", "redis-server"], name
            return words[3:]
    raise AssertionError(f"{name} runs no redis-server")


def flags(args: list[str]) -> dict[str, str]:
    """redis-server's reading of `--name value...`: name -> value ('' for a bare flag)."""
    parsed, name = {}, None
    for word in args:
        if word.startswith("--"):
            name = word[2:]
            parsed[name] = ""
        elif name is not None:
            parsed[name] = f"{parsed[name]} {word}".strip()
    return parsed


def first_start_config(name: str) -> tuple[str, list[list[str]]]:
    """The config file the script writes when there is none yet, and its directives,
    with the service's environment in place of $VARs (an unquoted heredoc)."""
    found = FIRST_START.search(script(name))
    assert found, f"{name} writes no config file on first start"
    body = found["body"]
    if not found["q"]:
        for var, value in SERVICES[name].get("environment", {}).items():
            body = body.replace(f"${var}", str(value))
    lines = [line.split() for line in body.splitlines()]
    return found["path"], [words for words in lines if words and not words[0].startswith("#")]


def settings(name: str) -> dict[str, str]:
    """A data node's settings: its config file's, then its flags, which win as in Redis."""
    path, directives = first_start_config(name)
    args = server_args(name)
    assert args[0] == path, name  # the server reads the file the script wrote
    return {**{words[0]: " ".join(words[1:]) for words in directives}, **flags(args[1:])}


SENTINELS = sorted(n for n in SERVICES if runs_redis(n) and "sentinel" in flags(server_args(n)))
DATA_NODES = sorted(n for n in SERVICES if runs_redis(n) and n not in SENTINELS)


def sentinel_directives(name: str) -> dict[str, list[str]]:
    """`sentinel <name> <args...>` lines of a sentinel's config: name -> args."""
    _, directives = first_start_config(name)
    assert all(words[0] == "sentinel" for words in directives), name
    return {words[1]: words[2:] for words in directives}


def test_the_override_runs_a_primary_a_replica_and_three_sentinels():
    assert DATA_NODES == ["redis", "redis-replica"]
    assert SENTINELS == ["sentinel-1", "sentinel-2", "sentinel-3"]
    for name in DATA_NODES + SENTINELS:
        assert SERVICES[name]["image"] == BASE["services"]["redis"]["image"] == "redis:7-alpine"


def test_every_app_service_finds_the_primary_through_the_sentinels():
    assert APP_SERVICES == ["scheduler", "web", "worker"]
    for name in APP_SERVICES:
        environment = SERVICES[name]["environment"]
        assert environment["REDIS_URL"] == SENTINEL_URL, name
        parsed = parse_sentinel_url(environment["REDIS_URL"])
        assert sorted(host for host, _ in parsed.hosts) == SENTINELS, name
        assert {port for _, port in parsed.hosts} == {26379}, name
        assert parsed.default_client.service == "workit", name
        assert parsed.client_options["db"] == 0, name
        assert environment["REDIS_WAIT_REPLICAS"] == "1", name
        assert environment["REDIS_WAIT_TIMEOUT_MS"] == "1000", name
        assert environment["MAIL_SERVER"] == "mailcatcher", name  # the main file's, kept
        assert set(environment) <= set(config.SETTINGS) | LIBRARY_SETTINGS, name


def test_the_app_services_wait_for_the_sentinels_and_the_replica():
    for name in APP_SERVICES:
        depends_on = SERVICES[name]["depends_on"]
        for node in DATA_NODES + SENTINELS:
            assert depends_on[node]["condition"] == "service_healthy", (name, node)


def test_each_sentinel_monitors_redis_with_a_majority_quorum():
    service = parse_sentinel_url(SENTINEL_URL).default_client.service
    for name in SENTINELS:
        sentinel = sentinel_directives(name)
        monitored, host, port, quorum = sentinel["monitor"]
        assert (monitored, host, port) == (service, "redis", "6379"), name
        assert int(quorum) == 2, name
        assert len(SENTINELS) / 2 < int(quorum) <= len(SENTINELS), name
        assert list(sentinel).index("resolve-hostnames") < list(sentinel).index("monitor")
        assert sentinel["resolve-hostnames"] == ["yes"], name
        assert sentinel["announce-hostnames"] == ["yes"], name
        assert sentinel["announce-ip"] == [name], name  # its service name, never an IP
        assert server_args(name)[1:] == ["--sentinel"], name
        assert SERVICES[name]["healthcheck"]["test"] == ["CMD", "redis-cli", "-p", "26379", "ping"]


def test_each_node_keeps_the_config_sentinel_rewrites_on_a_volume_of_its_own():
    """Sentinel rewrites its own file and the data nodes' (their roles) at a failover:
    written on first start only, on a named volume, the roles survive a down and up."""
    volumes = []
    for name in DATA_NODES + SENTINELS:
        path, _ = first_start_config(name)
        mounts = dict(reversed(v.split(":")[:2]) for v in SERVICES[name]["volumes"])
        directory = str(Path(path).parent)
        assert mounts.get(directory) in COMPOSE["volumes"], (name, path)
        volumes.append(mounts[directory])
    assert len(set(volumes)) == len(volumes)


def test_the_data_nodes_keep_an_fsynced_aof_and_refuse_writes_without_a_replica():
    for name in DATA_NODES:
        node = settings(name)
        assert node["appendonly"] == "yes" and node["appendfsync"] == "always", name
        assert node["min-replicas-to-write"] == "1", name
        assert node["min-replicas-max-lag"] == "10", name
        assert node["replica-announce-ip"] == name, name  # its service name, never an IP
        assert SERVICES[name]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"], name


def test_the_replica_starts_as_a_replica_of_redis():
    assert settings("redis-replica")["replicaof"] == "redis 6379"
    assert "replicaof" not in settings("redis")


def test_no_port_is_published_beyond_loopback():
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            host_ip = port.get("host_ip") if isinstance(port, dict) else port.split(":")[0]
            assert host_ip == "127.0.0.1", (name, port)


def test_the_main_file_names_the_override():
    header = (ROOT / "docker-compose.yml").read_text().split("\n\n")[0]
    assert "docker compose -f docker-compose.yml -f docker-compose.sentinel.yml up" in header
