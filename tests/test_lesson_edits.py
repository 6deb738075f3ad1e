"""The lesson test types a learner's changes as LESSON.md words them (harness/lesson_edits.py)."""

from harness.lesson_edits import apply_edit

START = '''"""An app."""

import os

from flask import Flask, request

import store
from web import app

x = 1


@app.get("/")
def accept(a):
    return store.save(a)
'''


def edited(tmp_path, code: str, times: int = 1) -> str:
    path = tmp_path / "web.py"
    path.write_text(START)
    for _ in range(times):
        apply_edit(path, code)
    return path.read_text()


def test_a_function_replaces_the_one_of_its_name_decorators_and_all(tmp_path):
    text = edited(tmp_path, "def accept(a):\n    return 2\n")
    assert "def accept(a):\n    return 2\n" in text
    assert "store.save" not in text and '@app.get("/")' not in text


def test_new_imports_go_under_the_last_import_and_the_rest_at_the_end(tmp_path):
    text = edited(tmp_path, "from redis import Redis\n\nqueue = Redis()\nq2 = 1\n")
    assert "from web import app\nfrom redis import Redis\n" in text
    assert text.endswith("return store.save(a)\n\n\nqueue = Redis()\nq2 = 1\n")


def test_a_wider_from_import_replaces_the_narrower_and_a_different_one_is_added(tmp_path):
    text = edited(tmp_path, "from web import app, redis_conn\nfrom flask import Response\n")
    assert "from web import app, redis_conn\n" in text and "from web import app\n" not in text
    assert "from flask import Flask, request\n" in text
    assert "from flask import Response\n" in text


def test_comment_lines_travel_with_their_statement(tmp_path):
    text = edited(tmp_path, "# why\ndef new():\n    pass\n")
    assert text.endswith("\n\n\n# why\ndef new():\n    pass\n")


def test_typing_a_block_twice_changes_nothing_more(tmp_path):
    code = "from redis import Redis\n\n\ndef accept(a):\n    return 2\n\n\nqueue = Redis()\n"
    assert edited(tmp_path, code, times=2) == edited(tmp_path, code)
