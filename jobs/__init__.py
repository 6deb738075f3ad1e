"""Background jobs. Each job is a module-level function that takes ids, never objects.

The queue names are the web app's hand-over (app/handover.py): jobs/ uses app/,
never the other way round.
"""

from app.handover import DEFAULT, MAILERS, MAINTENANCE, QUEUES

__all__ = ["DEFAULT", "MAILERS", "MAINTENANCE", "QUEUES"]
