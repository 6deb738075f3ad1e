"""REDIS_URL's two forms: one server, or a service found through Sentinel."""

import gc
import socket

import pytest
from redis.sentinel import SentinelConnectionPool

from app.ops.redis_connection import address, close, connect, limiter_storage, topology

SENTINELS = "redis+sentinel://:s3cret@127.0.0.1:26379,127.0.0.1:26380/workit/3"


def test_a_plain_url_is_one_server_and_the_limiter_reads_it_as_it_is(redis_url):
    client = connect(redis_url)
    assert client.ping()
    close(client)
    uri, options = limiter_storage(redis_url)
    assert uri == redis_url and options["db"] == 0


def test_a_sentinel_url_names_the_service_the_database_and_the_password():
    client = connect(SENTINELS, socket_timeout=5)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "workit"
    assert pool.connection_kwargs["db"] == 3
    assert pool.connection_kwargs["password"] == "s3cret"
    assert pool.connection_kwargs["socket_timeout"] == 5
    hosts = [s.connection_pool.connection_kwargs for s in pool.sentinel_manager.sentinels]
    assert [(h["host"], h["port"]) for h in hosts] == [("127.0.0.1", 26379), ("127.0.0.1", 26380)]
    # the sentinels are asked with the same password, and never wait long
    assert all(h["password"] == "s3cret" for h in hosts)
    assert all(h["socket_timeout"] == 0.5 for h in hosts)


def test_the_address_shown_never_carries_the_password():
    shown = address(connect(SENTINELS))
    assert shown == "service workit/3 via sentinels 127.0.0.1:26379,127.0.0.1:26380"


def test_the_limiter_gets_the_service_in_its_url_and_the_database_in_its_options():
    uri, options = limiter_storage(SENTINELS)
    assert uri == "redis+sentinel://:s3cret@127.0.0.1:26379,127.0.0.1:26380/workit"
    assert options["db"] == 3


def test_the_limiter_options_have_the_same_keys_for_both_kinds_of_url(redis_url):
    """Flask-Limiter keeps one Limiter and merges each app's options into the last
    app's: a key only the Sentinel storage takes would break the next plain app."""
    assert limiter_storage(SENTINELS)[1].keys() == limiter_storage(redis_url)[1].keys()


def test_a_plain_app_made_after_a_sentinel_app_still_limits(make_app, redis):
    make_app(REDIS_URL=SENTINELS)
    client = make_app(RATELIMIT_PER_CLIENT="1 per minute").test_client()
    body = {"email": "ada@example.com", "thought": "one"}
    assert client.post("/api/thoughts", json=body).status_code == 202
    assert client.post("/api/thoughts", json=body).status_code == 429


def open_sockets_to(ports: set[int]) -> list[socket.socket]:
    """This process's open TCP sockets to any of ``ports`` on this machine."""
    gc.collect()
    found = []
    for thing in gc.get_objects():
        if isinstance(thing, socket.socket) and thing.fileno() != -1:
            try:
                peer = thing.getpeername()
            except OSError:  # not connected
                continue
            if isinstance(peer, tuple) and peer[1] in ports:
                found.append(thing)
    return found


@pytest.mark.slow
def test_closing_a_client_behind_sentinel_closes_its_connections_to_the_sentinels(failover_set):
    """Redis.close() closes the primary's connections, not those to the sentinels that
    named it: left open, the garbage collector met them later, in whatever test it ran
    (issue 28's leaked sockets)."""
    client = connect(failover_set.url)
    assert topology(client)["sentinels"]["answering"] == 3  # asked every sentinel
    ports = {node.port for node in failover_set.nodes} | {s.port for s in failover_set.sentinels}
    assert open_sockets_to(ports)

    close(client)

    assert open_sockets_to(ports) == []
