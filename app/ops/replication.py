"""Writes that survive a failover: wait until replicas have them (Redis's WAIT).

Redis replicates asynchronously. A primary answers a write before any replica has
it, so a write it acknowledged can vanish with it when it dies and Sentinel promotes
a replica. For the two writes a failover must not undo (an accepted submission, and
the `sent` flag of an email the mail server took) Work-It waits until
REDIS_WAIT_REPLICAS replicas have acknowledged them, at most REDIS_WAIT_TIMEOUT_MS.
With 0 replicas (one Redis, as `make dev` runs) it waits for nothing.

WAIT counts the replicas that have every write made *on the connection it is sent
on*. The client's pool may hand that call another connection than the one that ran
the transaction, so a small write (``keys.REPLICATION_PROBE``) goes first on the same connection
as WAIT: replicas apply writes in order, so a replica that has the probe has ours.
"""

from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from app import keys


class NotReplicated(RedisError):
    """Fewer replicas than REDIS_WAIT_REPLICAS acknowledged a write in time."""

    def __init__(self, acknowledged: int, wanted: int, timeout_ms: int) -> None:
        super().__init__(
            f"{acknowledged} of {wanted} replica(s) acknowledged the write in {timeout_ms} ms"
        )
        self.acknowledged = acknowledged
        self.wanted = wanted


def wait_for_replicas(redis: Redis, config: Any) -> int:
    """Return once REDIS_WAIT_REPLICAS replicas have every write made so far, or
    raise NotReplicated. Returns how many acknowledged."""
    wanted = config["REDIS_WAIT_REPLICAS"]
    if wanted <= 0:
        return 0
    timeout_ms = config["REDIS_WAIT_TIMEOUT_MS"]
    with redis.pipeline(transaction=False) as pipe:  # one connection, one round trip
        pipe.incr(keys.REPLICATION_PROBE)
        pipe.wait(wanted, timeout_ms)
        _, acknowledged = pipe.execute()
    if acknowledged < wanted:
        raise NotReplicated(acknowledged, wanted, timeout_ms)
    return acknowledged


def refuses_writes(exc: BaseException) -> bool:
    """Redis's NOREPLICAS: the primary has fewer good replicas than its
    min-replicas-to-write, so it takes no write that a failover could lose."""
    return "NOREPLICAS" in str(exc)
