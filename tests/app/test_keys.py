"""Every Redis key is built in app/keys.py: no other module spells one."""

import re

import pytest

from app import ROOT, keys

OURS = re.compile(r"""["']workit[:"']""")
SOURCES = sorted(
    path
    for folder in ("app", "jobs")
    for path in (ROOT / folder).rglob("*.py")
    if path != ROOT / "app" / "keys.py"
)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_but_keys_spells_a_key_of_ours(path):
    assert not OURS.findall(path.read_text())


def test_rq_keys_come_from_rq_not_from_us():
    spelled = [p for p in SOURCES if re.search(r"""["']rq:""", p.read_text())]
    assert spelled == []


def test_every_key_has_the_prefix():
    built = [keys.submission("s"), keys.journey("s"), keys.lock("s"), keys.alert("j")]
    constants = [keys.PENDING, keys.METRICS, keys.REPLICATION_PROBE, keys.CRON_LEADER]
    assert all(key.startswith(keys.PREFIX + ":") for key in built + constants)
    assert len(set(built + constants)) == len(built + constants)
