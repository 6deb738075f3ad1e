"""ops/: the Prometheus and Alertmanager configs, checked by their own tools, and the
alerts' unit tests (ops/prometheus/alerts_test.yml) run by promtool.

The tools are Debian's (bin/ensure-prometheus, run by make test). Without them these
tests skip, except in CI, where they fail. promtool 2.42 does not open basic_auth's
password_file, so `check config` needs no password file here.
"""

import os
import re
import shutil
import subprocess
from datetime import timedelta

import pytest
import yaml

from app.ops.metrics import LATE_MAIL_SECONDS
from app.queues import MAILERS, QUEUES
from harness.devstack import ROOT
from jobs.outcomes import Outcome

PROMETHEUS = ROOT / "ops" / "prometheus"
ALERTMANAGER = ROOT / "ops" / "alertmanager"
RUNBOOK = ROOT / "docs" / "runbook.md"
RULES = [
    rule
    for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    for rule in group["rules"]
]
ALERTS = [rule for rule in RULES if "alert" in rule]
UNIT_TESTS = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]


def tool(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    message = f"no {name} on PATH (run bin/ensure-prometheus as root)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


CHECKS = [
    ["promtool", "check", "config", "ops/prometheus/prometheus.yml"],
    ["promtool", "check", "rules", "ops/prometheus/alerts.yml"],
    ["promtool", "test", "rules", "ops/prometheus/alerts_test.yml"],
    ["amtool", "check-config", "ops/alertmanager/alertmanager.yml"],
]


@pytest.mark.parametrize("command", CHECKS, ids=[" ".join(c) for c in CHECKS])
def test_the_tools_accept_the_configs_and_the_rules_pass_their_tests(command):
    result = subprocess.run(
        [tool(command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, (
        f"`{' '.join(command)}` exited {result.returncode}:\n{result.stdout}{result.stderr}"
    )


def test_prometheus_loads_the_rules_beside_it():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    assert yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["rule_files"] == [
        "alerts.yml"
    ]


# -- every alert: tested both ways, and actionable ---------------------------------------


def evaluations(alertname: str) -> list[tuple[dict, dict]]:
    """(unit test, evaluation) for each evaluation of this alert in alerts_test.yml."""
    return [
        (test, evaluation)
        for test in UNIT_TESTS
        for evaluation in test.get("alert_rule_test", [])
        if evaluation["alertname"] == alertname
    ]


def duration(text: str) -> timedelta:
    """Prometheus's `1h30m`, `5m`, `0s`: the units these files use."""
    units = {"h": "hours", "m": "minutes", "s": "seconds"}
    parts = re.findall(r"(\d+)([hms])", text)
    assert "".join(n + u for n, u in parts) == text, f"unexpected duration {text!r}"
    return timedelta(**{units[u]: int(n) for n, u in parts})


@pytest.mark.parametrize("rule", ALERTS, ids=[rule["alert"] for rule in ALERTS])
def test_every_alert_has_a_test_where_it_fires_and_one_where_it_holds_back(rule):
    found = evaluations(rule["alert"])
    fires = [e for _, e in found if e.get("exp_alerts")]
    holds_back = [e for _, e in found if not e.get("exp_alerts")]
    assert fires, f"no unit test fires {rule['alert']}"
    assert holds_back, f"no unit test holds {rule['alert']} back"
    for evaluation in fires:  # promtool compares all of them, so all must be written out
        for alert in evaluation["exp_alerts"]:
            assert alert["exp_labels"]["severity"] == rule["labels"]["severity"]
            assert set(alert["exp_annotations"]) == set(rule["annotations"])


@pytest.mark.parametrize(
    "rule", [r for r in ALERTS if r.get("for")], ids=[r["alert"] for r in ALERTS if r.get("for")]
)
def test_an_alert_with_a_for_is_tested_at_its_edge(rule):
    """Held back while pending, then firing, within one `for:` in the same unit test."""
    wait = duration(rule["for"])
    edges = []
    for test, _ in evaluations(rule["alert"]):
        times = {
            duration(e["eval_time"]): bool(e.get("exp_alerts"))
            for e in test["alert_rule_test"]
            if e["alertname"] == rule["alert"]
        }
        edges += [
            (quiet, firing)
            for quiet, fired in times.items()
            for firing, fires in times.items()
            if not fired and fires and timedelta(0) < firing - quiet <= wait
        ]
    assert edges, f"{rule['alert']}: no test holds it back while pending, then sees it fire"


@pytest.mark.parametrize("rule", ALERTS, ids=[rule["alert"] for rule in ALERTS])
def test_every_alert_says_how_bad_what_happened_and_where_the_runbook_is(rule):
    assert rule["labels"]["severity"] in {"critical", "warning"}
    annotations = rule["annotations"]
    assert {"summary", "description", "runbook_url"} <= set(annotations)
    assert len(annotations["description"]) > len(annotations["summary"]) > 10


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings: lower case, punctuation dropped, spaces
    to hyphens, -1, -2... for repeats. Fenced code is no heading."""
    anchors, seen = set(), {}
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def test_github_anchors_follow_githubs_rules():
    assert github_anchors("# Mail queue late\n## What: now?\n## What: now?\n") == {
        "mail-queue-late",
        "what-now",
        "what-now-1",
    }


@pytest.mark.parametrize("rule", ALERTS, ids=[rule["alert"] for rule in ALERTS])
def test_every_runbook_url_points_at_a_section_of_the_runbook(rule):
    path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
    assert (ROOT / path) == RUNBOOK
    assert anchor in github_anchors(RUNBOOK.read_text()), f"no heading for #{anchor}"


def test_alertmanager_groups_by_alert_name_and_sends_to_a_receiver_it_has():
    config = yaml.safe_load((ALERTMANAGER / "alertmanager.yml").read_text())
    route = config["route"]
    assert route["group_by"] == ["alertname"]
    assert route["receiver"] in {receiver["name"] for receiver in config["receivers"]}


def test_the_rules_name_only_our_queues_outcomes_and_late_mail_threshold():
    """Prometheus's rules cannot import Python: the queue names (app/queues.py), the
    run outcomes (jobs/outcomes.py) and the late-mail threshold (app/ops/metrics.py,
    which the doctor uses too) are checked against the code."""
    named = {queue for rule in RULES for queue in re.findall(r'queue="(\w+)"', rule["expr"])}
    assert named and named <= set(QUEUES)
    outcomes = {o for rule in RULES for o in re.findall(r'outcome="(\w+)"', rule["expr"])}
    assert outcomes and outcomes <= set(Outcome)
    [late] = [rule for rule in ALERTS if rule["alert"] == "MailQueueLate"]
    assert late["expr"].endswith(f'{{queue="{MAILERS}"}} > {LATE_MAIL_SECONDS}')
    assert f"over {LATE_MAIL_SECONDS} s" in late["annotations"]["description"]
