"""app/ hands work to jobs/ by name (app/background.py) and never imports it: the flow
is one-way, jobs/ builds on app/."""

import ast
import subprocess
import sys
from pathlib import Path

from app import ROOT, background
from harness.worker_processes import process_env

APP = ROOT / "app"


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_module_of_app_imports_jobs():
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported_modules(path) if m.split(".")[0] == "jobs"
        )
        for path in APP.rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


START_SERVE_THEN_POST = """
import sys
from app import create_app

def jobs_loaded():
    return sorted(m for m in sys.modules if m == "jobs" or m.startswith("jobs."))

client = create_app().test_client()
assert client.get("/").status_code == 200 and client.get("/healthz").status_code in (200, 503)
print(jobs_loaded())
response = client.post("/api/thoughts", json={"email": "a@example.com", "thought": "hi"})
assert response.status_code == 202, response.get_data(as_text=True)
print("jobs.gif_sender" in jobs_loaded())
"""


def test_the_web_app_starts_and_serves_without_the_jobs_and_hands_over_by_name(app_config):
    env = {**process_env(app_config), "WORKIT_DELIVERY": "later"}
    done = subprocess.run(
        [sys.executable, "-c", START_SERVE_THEN_POST],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "True"]


def test_the_doors_name_functions_the_jobs_side_has():
    from werkzeug.utils import import_string

    for name in (background.ENQUEUE_GIF_EMAIL, background.DELIVER_IN_REQUEST):
        assert callable(import_string(name))
