"""REDIS_URL's two forms: one server, or a service found through Sentinel."""

from redis.sentinel import SentinelConnectionPool

from app.redis_connection import address, connect, limiter_storage

SENTINELS = "redis+sentinel://:s3cret@127.0.0.1:26379,127.0.0.1:26380/workit/3"


def test_a_plain_url_is_one_server_and_the_limiter_reads_it_as_it_is(redis_url):
    client = connect(redis_url)
    assert client.ping()
    assert limiter_storage(redis_url) == (redis_url, {})


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
    # the sentinels are asked without the servers' password, and never wait long
    assert all("password" not in h or h["password"] is None for h in hosts)
    assert all(h["socket_timeout"] == 0.5 for h in hosts)


def test_the_address_shown_never_carries_the_password():
    shown = address(connect(SENTINELS))
    assert shown == "service workit/3 via sentinels 127.0.0.1:26379,127.0.0.1:26380"


def test_the_limiter_gets_the_service_in_its_url_and_the_database_in_its_options():
    uri, options = limiter_storage(SENTINELS)
    assert uri == "redis+sentinel://:s3cret@127.0.0.1:26379,127.0.0.1:26380/workit"
    assert options["db"] == 3
    assert options["sentinel_kwargs"]["password"] is None
    assert options["use_replicas"] is False
