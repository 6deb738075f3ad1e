"""REDIS_URL to a redis-py client: one Redis server, or a primary found through Sentinel.

``redis://[:password@]host:port/db`` is one server.
``redis+sentinel://[:password@]host:port[,host:port...]/service[/db]`` names the
sentinels that watch a primary and its replicas. The client asks them where the
primary is, and asks again whenever the one it knew stops answering or has become a
replica (redis-py's SentinelConnectionPool), so every part of Work-It follows a
failover without a restart. It is the URL rq-dashboard reads, parsed here by the
library it uses (redis-sentinel-url); Flask-Limiter reads it too (``limiter_storage``).

The password, if any, is sent to the servers and to the sentinels alike (as
Flask-Limiter sends it): give the sentinels the same one (`requirepass`, and
`sentinel auth-pass` for the servers they watch).
"""

from typing import Any
from urllib.parse import urlsplit

from redis import Redis
from redis.exceptions import RedisError
from redis.sentinel import Sentinel
from redis_sentinel_url import connect as connect_url
from redis_sentinel_url import parse_sentinel_url

SENTINEL_SCHEME = "redis+sentinel"
# A sentinel that does not answer within this is skipped for the next one: never
# wait on one that is cut off from us.
SENTINEL_TIMEOUT_SECONDS = 0.5
# The web's and the workers' clients: a Redis that does not take the connection in 2 s,
# or answer a command in 5 s, is reported as down (a 503, a retry), never waited on.
CONNECT_TIMEOUT_SECONDS = 2
COMMAND_TIMEOUT_SECONDS = 5
TIMEOUTS = {
    "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
    "socket_timeout": COMMAND_TIMEOUT_SECONDS,
}


def is_sentinel_url(url: str) -> bool:
    return url.startswith(f"{SENTINEL_SCHEME}://")


def connect(url: str, **options: Any) -> Redis:
    """A client for REDIS_URL; ``options`` (timeouts, ...) go to its connections."""
    asked = sentinel_options(url)
    _, client = connect_url(url, sentinel_options=asked, client_options=options)
    return client


def close(client: Redis) -> None:
    """Close a client made by ``connect``, and behind Sentinel its clients of the
    sentinels too: ``client.close()`` alone leaves those open, for the garbage
    collector to find unclosed."""
    client.close()
    found = sentinel_for(client)
    if found is not None:
        for sentinel in found[0].sentinels:
            sentinel.close()


def sentinel_options(url: str) -> dict[str, Any]:
    password = (
        parse_sentinel_url(url).client_options.get("password") if is_sentinel_url(url) else None
    )
    return {
        "socket_connect_timeout": SENTINEL_TIMEOUT_SECONDS,
        "socket_timeout": SENTINEL_TIMEOUT_SECONDS,
        **({"password": password} if password else {}),
    }


def sentinel_for(client: Redis) -> tuple[Sentinel, str] | None:
    """The Sentinel and service name behind a client made by ``connect``, or None
    for a client of one server."""
    pool = client.connection_pool
    manager = getattr(pool, "sentinel_manager", None)
    return (manager, pool.service_name) if manager is not None else None


def limiter_storage(url: str) -> tuple[str, dict[str, Any]]:
    """RATELIMIT_STORAGE_URI and RATELIMIT_STORAGE_OPTIONS for REDIS_URL.

    Flask-Limiter's Sentinel storage takes the service from the URL's path but not a
    database after it, so the database goes in the options. The options have the
    same keys for both kinds of URL: Flask-Limiter's one Limiter merges each app's
    options into the last app's (tests make many apps in one process), so a key only
    one kind takes would reach the other."""
    options = {"db": 0, **TIMEOUTS}
    if not is_sentinel_url(url):
        return url, {**options, "db": int(urlsplit(url).path.strip("/") or 0)}
    parsed = parse_sentinel_url(url)
    hosts = ",".join(f"{host}:{port}" for host, port in parsed.hosts)
    password = parsed.client_options.get("password")
    auth = f":{password}@" if password else ""
    uri = f"{SENTINEL_SCHEME}://{auth}{hosts}/{parsed.default_client.service}"
    return uri, {**options, "db": parsed.client_options.get("db", 0)}


def address(client: Redis) -> str:
    """Where the client's data lives, without a password: host:port/db, or
    ``service <name> via sentinels host:port,...``."""
    found = sentinel_for(client)
    db = client.connection_pool.connection_kwargs.get("db", 0)
    if found is None:
        kwargs = client.connection_pool.connection_kwargs
        return f"{kwargs.get('host')}:{kwargs.get('port')}/{db}"
    sentinel, service = found
    hosts = ",".join(_where(s) for s in sentinel.sentinels)
    return f"service {service}/{db} via sentinels {hosts}"


def _where(client: Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"{kwargs.get('host')}:{kwargs.get('port')}"


def topology(client: Redis) -> dict[str, Any]:
    """What the client is connected to: the primary, its replicas with their lag
    (seconds since each last acknowledged), and behind Sentinel the sentinels that
    answer and the quorum they need to elect a new primary. Raises RedisError when
    the primary does not answer."""
    info = client.info("replication")
    replicas = [
        {"address": f"{v['ip']}:{v['port']}", "state": v.get("state"), "lag": v.get("lag")}
        for k, v in info.items()
        if k.startswith("slave") and isinstance(v, dict)
    ]
    found = sentinel_for(client)
    shape: dict[str, Any] = {"role": info.get("role"), "replicas": replicas}
    if found is None:
        kwargs = client.connection_pool.connection_kwargs
        return {"primary": f"{kwargs.get('host')}:{kwargs.get('port')}", **shape}
    sentinel, service = found
    host, port = client.connection_pool.get_master_address()
    return {"primary": f"{host}:{port}", **shape, **_sentinels(sentinel, service)}


def _sentinels(sentinel: Sentinel, service: str) -> dict[str, Any]:
    answered, quorum, known = 0, None, 0
    for node in sentinel.sentinels:
        try:
            state = node.sentinel_master(service)
        except RedisError:  # a sentinel down or cut off: count it out, ask the next
            continue
        answered += 1
        quorum = state.get("quorum", quorum)
        known = max(known, state.get("num-other-sentinels", 0) + 1)
    return {
        "sentinels": {"configured": len(sentinel.sentinels), "answering": answered, "known": known},
        "quorum": quorum,
    }
