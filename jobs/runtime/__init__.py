"""The worker's runtime: how make dev and compose run the jobs.

A pool of non-forking workers (pool.py, workers.py) that hands a job back when
stopped (shutdown.py), speed work on RQ's worker (tuning.py), and the cron
scheduler that leads alone (cron_scheduler.py). The jobs themselves know nothing
of it (docs/architecture.md).
"""
