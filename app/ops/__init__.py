"""Operations: what running Work-It for real needs, and the lesson does not.

The Redis connection (one server or Sentinel) and WAIT for replicas, the mail
connection, /metrics, /healthz and `flask doctor`, gunicorn's settings, and which
redis-server make dev runs. The lesson's code reaches in through one door only,
bookkeeping.py (docs/architecture.md).
"""
