"""The thoughts, kept in SQLite: the database this app had before it had a queue."""

import sqlite3
from contextlib import closing
from pathlib import Path

DATABASE = Path(__file__).with_name("thoughts.sqlite3")
SCHEMA = "CREATE TABLE IF NOT EXISTS thoughts (id INTEGER PRIMARY KEY, email TEXT, thought TEXT)"


def connect() -> sqlite3.Connection:
    db = sqlite3.connect(DATABASE)
    db.execute(SCHEMA)
    return db


def save(email: str, thought: str) -> int:
    with closing(connect()) as db, db:
        cursor = db.execute("INSERT INTO thoughts (email, thought) VALUES (?, ?)", (email, thought))
        return cursor.lastrowid


def load(thought_id: int) -> tuple[str, str]:
    """The thought's email address and text, as they are now."""
    with closing(connect()) as db:
        query = "SELECT email, thought FROM thoughts WHERE id = ?"
        return db.execute(query, (thought_id,)).fetchone()
