"""docker-compose.yml cannot run here (no Docker engine), so check it against the code."""

import shlex
from pathlib import Path

import yaml
from honcho.environ import parse_procfile

from app import config

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PROCFILE = parse_procfile((ROOT / "Procfile").read_text()).processes


def test_compose_runs_every_procfile_process():
    assert set(PROCFILE) <= set(COMPOSE["services"])


def test_compose_sets_only_settings_the_app_reads():
    for name, service in COMPOSE["services"].items():
        assert set(service.get("environment", {})) <= set(config.SETTINGS), name


def test_published_ports_are_bound_to_loopback():
    for service in COMPOSE["services"].values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port


def test_compose_worker_uses_the_procfile_worker_classes_and_queues():
    procfile_args = shlex.split(PROCFILE["worker"].split("&&", 1)[1])
    compose_args = COMPOSE["services"]["worker"]["command"]
    for flag in ("--worker-class", "--job-class"):
        assert (
            compose_args[compose_args.index(flag) + 1]
            == procfile_args[procfile_args.index(flag) + 1]
        )
    assert compose_args[-3:] == procfile_args[-3:] == ["mailers", "default", "maintenance"]
    assert "--with-scheduler" in compose_args and "--with-scheduler" in procfile_args
