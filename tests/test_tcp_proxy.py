"""harness/tcp_proxy.py: real sockets, a real redis-server and redis-py through the proxy."""

import logging
import os
import socket
import threading
from collections.abc import Iterator

import pytest
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry

from harness.polling import wait_for
from harness.ports import free_port
from harness.redis_server import RedisServer
from harness.tcp_proxy import TcpProxy


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    """One for the module: each test uses keys of its own, and a start costs a second
    on a busy machine."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def proxy(server: RedisServer) -> Iterator[TcpProxy]:
    with TcpProxy(server.host, server.port) as proxy:
        yield proxy


def through(proxy: TcpProxy, timeout: float = 5) -> Redis:
    """A client of the proxy that fails at once: redis-py's default Retry would try
    three more times, seconds apart."""
    return Redis(
        proxy.host,
        proxy.port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def test_forwards_commands_and_counts_the_connection(server, proxy):
    assert proxy.address == f"127.0.0.1:{proxy.port}"
    assert proxy.port != server.port
    with through(proxy) as client:
        assert client.ping()
        client.set("greeting", "hello")
        assert proxy.connections == 1
        with Redis(server.host, server.port) as direct:
            assert direct.get("greeting") == b"hello"
    wait_for(lambda: proxy.connections == 0, 5, "the closed connection to be dropped")


def test_a_megabyte_round_trips_intact(proxy):
    value = os.urandom(1024 * 1024)
    with through(proxy) as client:
        client.set("big", value)
        assert client.get("big") == value


def test_cut_resets_open_connections_and_new_ones(proxy):
    with through(proxy) as client, through(proxy) as other:
        assert client.ping() and other.ping()
        assert proxy.connections == 2

        proxy.cut()

        assert proxy.connections == 0
        with pytest.raises(ConnectionError):
            client.ping()
        with through(proxy) as newcomer, pytest.raises(ConnectionError):
            newcomer.ping()
        assert proxy.connections == 0


def test_heal_lets_new_clients_through(proxy):
    with through(proxy) as client:
        assert client.ping()
        proxy.cut()
        with pytest.raises(ConnectionError):
            client.ping()

        proxy.heal()

        with through(proxy) as newcomer:
            assert newcomer.ping()
        assert client.ping()  # the cut connection stays closed; redis-py makes a new one


def test_blackhole_forwards_nothing_until_healed(server, proxy):
    with through(proxy, timeout=0.5) as client, Redis(server.host, server.port) as direct:
        assert client.ping()

        proxy.cut("blackhole")

        with pytest.raises(TimeoutError):
            client.set("late", "sent during the cut")
        with through(proxy, timeout=0.5) as newcomer, pytest.raises(TimeoutError):
            newcomer.ping()
        assert proxy.connections >= 1  # held, not closed
        assert direct.get("late") is None

        proxy.heal()

        # The SET the client gave up on is delivered now, as after a real partition.
        wait_for(lambda: direct.get("late") == b"sent during the cut", 5, "the late SET")
        with through(proxy) as newcomer:
            assert newcomer.ping()


def test_cut_parts_a_replica_from_its_primary_until_healed(server, proxy):
    def link(replica: Redis) -> str:
        return replica.info("replication")["master_link_status"]

    replicaof = ("--replicaof", proxy.host, str(proxy.port))
    with RedisServer(extra_args=replicaof) as replica, Redis(replica.host, replica.port) as r:
        wait_for(lambda: link(r) == "up", 10, "the replica to sync")

        proxy.cut()

        wait_for(lambda: link(r) == "down", 5, "the replica to lose its primary")
        with Redis(server.host, server.port) as primary:
            primary.set("replicated", "after the cut")
        proxy.heal()
        wait_for(lambda: r.get("replicated") == b"after the cut", 10, "the replica to catch up")


def test_half_close_still_gets_the_reply(proxy):
    with socket.create_connection((proxy.host, proxy.port), timeout=5) as raw:
        raw.sendall(b"PING\r\n")
        raw.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := raw.recv(1024):
            received += chunk
    assert received == b"+PONG\r\n"


def test_a_target_that_is_down_resets_clients_quietly(caplog):
    caplog.set_level(logging.DEBUG, logger="asyncio")
    nothing_there = free_port()
    with TcpProxy("127.0.0.1", nothing_there) as proxy, through(proxy) as client:
        with pytest.raises(ConnectionError):
            client.ping()
        wait_for(lambda: proxy.connections == 0, 5, "the failed connection to be dropped")
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize("mode", ["forwarding", "blackhole"])
def test_stop_ends_the_thread_the_listener_and_every_connection_quietly(server, caplog, mode):
    def proxy_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == f"tcp-proxy-{proxy.port}"]

    caplog.set_level(logging.DEBUG, logger="asyncio")
    proxy = TcpProxy(server.host, server.port)
    proxy.start()
    with through(proxy) as client, through(proxy, timeout=0.2) as newcomer:
        assert client.ping()
        if mode == "blackhole":  # one link held mid-way, one before it reached Redis
            proxy.cut("blackhole")
            with pytest.raises(TimeoutError):
                newcomer.ping()
        assert proxy.connections == (2 if mode == "blackhole" else 1)
        assert proxy_threads()

        proxy.stop()

        assert proxy_threads() == []
        with pytest.raises(ConnectionError):
            client.ping()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((proxy.host, proxy.port), timeout=5).close()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
