"""Submissions put in the way the app takes them."""

from flask import Flask

from app.thoughts import accept


def submit(
    app: Flask, count: int = 1, email: str = "user{n}@example.com", thought: str = "thought {n}"
) -> list[str]:
    """Store ``count`` submissions and enqueue their jobs through the app's own path
    (accept: the record and its job in one transaction, as a web request does), so
    that what runs them meets real jobs; returns their ids. ``{n}`` in ``email`` and
    ``thought`` numbers them from 0."""
    with app.test_request_context():
        return [accept(email.format(n=n), thought.format(n=n)).id for n in range(count)]
