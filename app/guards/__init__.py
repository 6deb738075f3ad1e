"""Web hardening: what stands between hostile requests and the lesson's code.

Strict JSON bodies, headers on every answer, the job dashboard's guards, and
addresses kept out of what others may see. Nothing here is needed to follow the
lesson; all of it is on in every app (docs/architecture.md).
"""
