"""Background jobs. Each job is a module-level function that takes ids, never objects.

Queue names, in the order a worker drains them (mail first, housekeeping last).
"""

MAILERS = "mailers"
DEFAULT = "default"
MAINTENANCE = "maintenance"
QUEUES = (MAILERS, DEFAULT, MAINTENANCE)
