"""Apply the code a learner types in LESSON.md's Part 1 to their copy of the starter.

A block fenced ```python new PATH``` is a whole new file. A block fenced
```python edit PATH``` is a change to a file, made the way the lesson words it:
- an import that the file lacks goes under the file's last import, but
  `from m import a, b` replaces the file's `from m import a`;
- a function or class replaces the one of the same name (or, if the file has
  none, goes at the end);
- any other statement that the file lacks goes at the end.

The comment lines right above a statement travel with it. Applying a block twice
changes nothing the second time, as a learner who pastes twice expects.
"""

import ast
from pathlib import Path

TOP_LEVEL_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def write_new(path: Path, code: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(code.rstrip("\n") + "\n")


def apply_edit(path: Path, code: str) -> None:
    text = path.read_text()
    for piece, node in pieces(code):
        text = apply_piece(text, piece, node)
    path.write_text(text.rstrip("\n") + "\n")


def pieces(code: str) -> list[tuple[str, ast.stmt]]:
    """Each top-level statement of the block with its decorators and the comment
    lines right above it."""
    lines = code.splitlines()
    found: list[tuple[int, ast.stmt]] = []
    for node in ast.parse(code).body:
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))]) - 1
        while first > 0 and lines[first - 1].lstrip().startswith("#"):
            first -= 1
        if found and is_plain(node) and is_plain(found[-1][1]):
            first = found.pop()[0]  # statements in a row stay together, as typed
        found.append((first, node))
    return [("\n".join(lines[first : node.end_lineno]), node) for first, node in found]


def is_plain(node: ast.stmt) -> bool:
    return not isinstance(node, (ast.Import, ast.ImportFrom, *TOP_LEVEL_DEFS))


def apply_piece(text: str, piece: str, node: ast.stmt) -> str:
    if piece in text:
        return text
    if isinstance(node, ast.ImportFrom):
        replaced = replace_import_from(text, piece, node)
        if replaced is not None:
            return replaced
    if isinstance(node, ast.Import | ast.ImportFrom):
        return insert_after_imports(text, piece)
    if isinstance(node, TOP_LEVEL_DEFS):
        replaced = replace_definition(text, piece, node.name)
        if replaced is not None:
            return replaced
        return text.rstrip("\n") + "\n\n\n" + piece + "\n"
    return text.rstrip("\n") + "\n\n\n" + piece + "\n"


def insert_after_imports(text: str, piece: str) -> str:
    lines = text.splitlines()
    imports = [n for n in ast.parse(text).body if isinstance(n, ast.Import | ast.ImportFrom)]
    at = imports[-1].end_lineno if imports else 0
    return "\n".join([*lines[:at], piece, *lines[at:]]) + "\n"


def replace_import_from(text: str, piece: str, new: ast.ImportFrom) -> str | None:
    """`from web import app, redis_conn` replaces `from web import app`."""
    lines = text.splitlines()
    names = {alias.name for alias in new.names}
    for old in ast.parse(text).body:
        if (
            isinstance(old, ast.ImportFrom)
            and (old.module, old.level) == (new.module, new.level)
            and {alias.name for alias in old.names} <= names
        ):
            return "\n".join([*lines[: old.lineno - 1], piece, *lines[old.end_lineno :]]) + "\n"
    return None


def replace_definition(text: str, piece: str, name: str) -> str | None:
    lines = text.splitlines()
    for node in ast.parse(text).body:
        if isinstance(node, TOP_LEVEL_DEFS) and node.name == name:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            return "\n".join([*lines[:first], piece, *lines[node.end_lineno :]]) + "\n"
    return None
