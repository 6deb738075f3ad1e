"""Background jobs. Each job is a module-level function that takes ids, never objects.

The queue names live in app/queues.py, because the web app needs them too and
jobs/ uses app/, never the other way round.
"""

from app.queues import DEFAULT, MAILERS, MAINTENANCE, QUEUES

__all__ = ["DEFAULT", "MAILERS", "MAINTENANCE", "QUEUES"]
