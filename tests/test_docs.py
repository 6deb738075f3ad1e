"""What the README and the lesson tell people to type works in a fresh shell,
where `.venv/bin` is not on PATH (tests/test_lesson.py runs the lesson itself)."""

import ast
import re

import pytest

from harness.devstack import ROOT

DOCS = [
    "README.md",
    "LESSON.md",
    "mailcatcher/README.md",
    "docs/metrics.md",
    "docs/failover.md",
    "docs/portability.md",
]
# Installed into .venv by make, so a fresh shell does not find them by name.
VENV_ONLY = re.compile(r"^(rq|flask|honcho|pytest|ruff|mailcatcher|pip|python -m)\b")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
SHELL_BLOCK = re.compile(r"^```sh[^\n]*\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def commands(text: str) -> list[str]:
    """Inline code spans that hold a command, and every line of the shell blocks."""
    spans = [s for s in INLINE_CODE.findall(text) if " " in s]
    lines = [line for block in SHELL_BLOCK.findall(text) for line in block.splitlines()]
    for_loops = [part for line in lines for part in re.split(r"\bdo\b|;|&&|\|", line)]
    return [c.strip() for c in spans + lines + for_loops]


@pytest.mark.parametrize("doc", DOCS)
def test_commands_name_venv_tools_by_their_path(doc):
    wrong = [c for c in commands((ROOT / doc).read_text()) if VENV_ONLY.match(c)]
    assert wrong == [], f"{doc}: prefix these with .venv/bin/ (or use a make target): {wrong}"


def test_the_readme_links_the_lesson_first():
    readme = (ROOT / "README.md").read_text()
    first_link = re.search(r"\]\(([^)]+)\)", readme).group(1)
    assert first_link == "LESSON.md"


@pytest.mark.parametrize("doc", DOCS)
def test_every_picture_a_doc_shows_exists(doc):
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (ROOT / doc).read_text())
    missing = [p for p in pictures if not (ROOT / doc).parent.joinpath(p).is_file()]
    assert missing == []


QUOTE = re.compile(r"<!-- quote: (\S+) (\w+) -->\n```python\n(.*?)\n```", re.DOTALL)


def test_the_lesson_quotes_the_code_as_it_stands():
    """LESSON.md shows the starter's `accept` and the finished job; a changed line fails here."""
    quotes = QUOTE.findall((ROOT / "LESSON.md").read_text())
    assert {(path, name) for path, name, _ in quotes} >= {
        ("lesson/starter/web.py", "accept"),
        ("jobs/gif_sender.py", "send_gif_email"),
    }
    for path, name, quoted in quotes:
        source = (ROOT / path).read_text()
        [function] = [
            node
            for node in ast.parse(source).body
            if isinstance(node, ast.FunctionDef) and node.name == name
        ]
        assert quoted == ast.get_source_segment(source, function), f"{path}: {name}"
