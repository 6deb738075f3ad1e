"""A submission's states are spelled once (app/submissions.py, Status): the Lua
scripts, the status page, its script and its styles all follow that one list."""

import ast
import re

import pytest

from app import ROOT, keys, submissions
from app.submissions import CLOSED, FINAL, Status

STATUS_JS = (ROOT / "app" / "static" / "status.js").read_text()
STYLES = "".join(path.read_text() for path in (ROOT / "app" / "static").glob("*.css"))


def test_the_status_script_describes_every_state_and_no_other():
    [table] = re.findall(r"const DETAIL = \{(.*?)\};", STATUS_JS, re.DOTALL)
    assert set(re.findall(r"^\s*(\w+):", table, re.M)) == set(Status)
    quoted = set(re.findall(r'status [!=]== "(\w+)"', STATUS_JS))
    assert quoted and quoted <= set(Status)


def test_styles_and_templates_name_only_states_that_exist():
    assert set(re.findall(r"\.status-(\w+)", STYLES)) <= set(Status)
    templates = "".join(path.read_text() for path in (ROOT / "templates").rglob("*.html"))
    assert not re.findall(r"status\s*[!=]=\s*[\"']", templates), "compare with Status.X"


@pytest.mark.parametrize("status", list(Status))
def test_an_attempt_starts_on_every_state_but_a_closed_one(app, redis, status):
    with app.app_context():
        sub = submissions.create(redis, "ada@example.com", "hi")
        submissions.update(redis, sub.id, status=status)

        after = submissions.begin_attempt(redis, sub.id)

    if status in CLOSED:
        assert (after.status, after.attempts) == (status, 0)
    else:
        assert (after.status, after.attempts) == (Status.SENDING, 1)


@pytest.mark.parametrize("status", [Status.FAILED, Status.QUEUED])
def test_a_failed_attempt_never_reopens_a_closed_submission(app, redis, status):
    for closed in CLOSED:
        with app.app_context():
            sub = submissions.create(redis, "ada@example.com", "hi")
            submissions.update(redis, sub.id, status=closed)
            changed = submissions.mark_attempt_failed(redis, sub.id, "boom", status in FINAL)
        assert not changed
        assert submissions.load(redis, sub.id).status == closed


def test_a_submission_reads_back_as_it_was_written(app, redis):
    with app.app_context():
        sub = submissions.create(redis, "ada@example.com", "hi")
    redis_hash = redis.hgetall(keys.submission(sub.id))
    assert submissions.Submission.from_hash(redis_hash) == sub


def test_every_journey_event_is_named_from_the_one_list():
    """record_event's and _event's event argument is never a string typed in place."""
    typed = []
    for path in [*(ROOT / "app").rglob("*.py"), *(ROOT / "jobs").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and _name(node.func) in {"record_event", "_event"}:
                event = node.args[2] if _name(node.func) == "record_event" else node.args[0]
                if isinstance(event, ast.Constant | ast.JoinedStr):
                    typed.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert typed == []


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
