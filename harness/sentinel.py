"""A Redis that can fail over, on this machine: a primary, its replicas and three
sentinels, each a real redis-server on a loopback free port, for the failover
tests and `make failover-drill`.

Every data node runs as the product asks of one (docs/failover.md):
the append-only file synced on every write, and `min-replicas-to-write 1` so that a
primary with no replica in reach refuses writes a failover would lose. The sentinels
are quick to judge (a primary silent for DOWN_AFTER_MS is down), so a test sees a
failover in seconds, not the production default's half minute.

With ``proxied_primary`` a TcpProxy (harness/tcp_proxy.py) stands in front of the
first primary, and everyone reaches it only through the proxy: the replicas
replicate from the proxy's port, the sentinels monitor the proxy's address, and the
app asks the sentinels, so it connects there too. Cutting the proxy is a network
partition with the primary alone on its side (tests/test_partition.py).
"""

import contextlib
import subprocess
import tempfile
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from app.ops.redis_binary import redis_server_binary
from harness.polling import wait_for
from harness.ports import free_port
from harness.redis_server import RedisServer
from harness.tcp_proxy import TcpProxy

SERVICE = "workit"
QUORUM = 2
DOWN_AFTER_MS = 2500
FAILOVER_TIMEOUT_MS = 10000
# A primary takes writes only while this many replicas acknowledged within the lag.
MIN_REPLICAS_TO_WRITE = 1
MIN_REPLICAS_MAX_LAG = 3
READY_SECONDS = 30


class SentinelProcess:
    """`redis-server sentinel.conf --sentinel` (``binary`` is the redis-server, or
    valkey-server, to run): it rewrites its own config file as it learns the
    topology, so each gets a file of its own."""

    def __init__(self, datadir: Path, primary_port: int, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.datadir = datadir
        self.config = datadir / f"sentinel-{self.port}.conf"
        self.config.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {datadir}\n"
            f"logfile {datadir / f'sentinel-{self.port}.log'}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} {QUORUM}\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, str(self.config), "--sentinel"], stdout=subprocess.DEVNULL
        )

    def client(self) -> Redis:
        return Redis("127.0.0.1", self.port, socket_connect_timeout=1, socket_timeout=1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class FailoverSet:
    """A primary, ``replicas`` replicas and three sentinels; ``url`` is the
    redis+sentinel:// REDIS_URL that finds whichever is primary now.

    ``proxied_primary``: the first primary (node-0) is reached only through
    ``proxy``, a TcpProxy started and stopped with the set. The replicas replicate
    from the proxy's port and the sentinels monitor its address; node-0 announces
    the proxy's address as its own (replica-announce-port), so that once it is a
    replica, its new primary lists it there and the sentinels keep talking to it
    through the proxy: one address for node-0, whatever its role.

    ``min_replicas_to_write``: MIN_REPLICAS_TO_WRITE unless a test removes the guard
    (0) to show what it prevents.

    ``binary``: the server every node and sentinel runs; without, the one `make dev`
    would run (app/ops/redis_binary.py).
    """

    def __init__(
        self,
        datadir: Path | str | None = None,
        replicas: int = 2,
        proxied_primary: bool = False,
        min_replicas_to_write: int = MIN_REPLICAS_TO_WRITE,
        binary: str | None = None,
    ) -> None:
        self._scratch = None if datadir else tempfile.TemporaryDirectory(prefix="sentinel-")
        self.datadir = Path(datadir or self._scratch.name)
        self.min_replicas_to_write = min_replicas_to_write
        self.binary = binary or redis_server_binary()
        self.nodes: list[RedisServer] = []
        self.proxy: TcpProxy | None = None
        primary = self._node("node-0", replica_of=None)
        self.nodes.append(primary)
        monitored = primary.port
        if proxied_primary:
            self.proxy = TcpProxy(primary.host, primary.port)
            monitored = self.proxy.port
            primary.command += ["--replica-announce-ip", self.proxy.host]
            primary.command += ["--replica-announce-port", str(self.proxy.port)]
        self.nodes += [self._node(f"node-{n}", monitored) for n in range(1, replicas + 1)]
        self.sentinels = [SentinelProcess(self.datadir, monitored, self.binary) for _ in range(3)]
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        self.url = f"redis+sentinel://{hosts}/{SERVICE}/0"

    def _node(self, name: str, replica_of: int | None) -> RedisServer:
        datadir = self.datadir / name
        datadir.mkdir(parents=True, exist_ok=True)
        args = ["--min-replicas-to-write", str(self.min_replicas_to_write)]
        args += ["--min-replicas-max-lag", str(MIN_REPLICAS_MAX_LAG)]
        if replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(replica_of)]
        return RedisServer(
            datadir, appendfsync="always", extra_args=tuple(args), binary=self.binary
        )

    # -- life ----------------------------------------------------------------

    def start(self) -> "FailoverSet":
        if self.proxy is not None:
            self.proxy.start()
        for node in self.nodes:
            node.start()
        wait_for(self._replicas_online, READY_SECONDS, "the replicas to sync", interval=0.1)
        for sentinel in self.sentinels:
            sentinel.start()
        wait_for(self._sentinels_agree, READY_SECONDS, "the sentinels to see it all", interval=0.1)
        return self

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop()
        if self.proxy is not None:
            self.proxy.stop()

    def __enter__(self) -> "FailoverSet":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
        if self._scratch is not None:
            self._scratch.cleanup()

    # -- what is where ---------------------------------------------------------

    def primary_port(self) -> int | None:
        """The primary the sentinels name now (the first that answers), or None."""
        for sentinel in self.sentinels:
            with contextlib.suppress(RedisError), sentinel.client() as client:
                found = client.sentinel_get_master_addr_by_name(SERVICE)
                if found:
                    return int(found[1])
        return None

    def node(self, port: int) -> RedisServer:
        """The node at ``port``: its own, or (node-0) the proxy's in front of it."""
        if self.proxy is not None and port == self.proxy.port:
            return self.nodes[0]
        return next(node for node in self.nodes if node.port == port)

    def primary(self) -> RedisServer:
        return self.node(self.primary_port())

    def _replicas_online(self, primary: RedisServer | None = None) -> bool:
        primary = primary or self.nodes[0]
        with Redis(primary.host, primary.port, socket_timeout=1) as client:
            info = client.info("replication")
        online = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
        return len([r for r in online if r.get("state") == "online"]) == len(self.nodes) - 1

    def _sentinels_agree(self) -> bool:
        for sentinel in self.sentinels:
            try:
                with sentinel.client() as client:
                    state = client.sentinel_master(SERVICE)
            except RedisError:
                return False
            others = state.get("num-other-sentinels", 0)
            if (
                others != len(self.sentinels) - 1
                or state.get("num-slaves", 0) != len(self.nodes) - 1
            ):
                return False
        return True

    # -- faults ----------------------------------------------------------------

    def kill_primary(self) -> RedisServer:
        """SIGKILL to the primary, as its machine dying; returns it (restart it later)."""
        primary = self.primary()
        primary.kill()
        return primary

    def wait_for_new_primary(self, old_port: int, timeout: float = 60) -> int:
        """Until the sentinels name another primary and it takes writes; its port."""

        def promoted() -> int | None:
            port = self.primary_port()
            if port in (None, old_port):
                return None
            with contextlib.suppress(RedisError), Redis("127.0.0.1", port) as client:
                if client.info("replication").get("role") == "master":
                    return port
            return None

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            port = promoted()
            if port:
                return port
            time.sleep(0.1)
        raise AssertionError(f"no new primary {timeout}s after {old_port} went down")

    def fail_over(self, timeout: float = 60) -> None:
        """Kill the primary, wait for the sentinels to promote a replica, and start the
        killed node again as a replica of it: one round of a failover drill."""
        old = self.kill_primary()
        self.wait_for_new_primary(old.port, timeout)
        self.rejoin(old, timeout)

    def rejoin(self, node: RedisServer, timeout: float = 60) -> None:
        """Start a node that was killed: it comes back with its own data as a primary
        of nobody, and the sentinels turn it into a replica of the new primary."""
        node.start()
        self.wait_for_replica(node, timeout)

    def wait_for_replica(self, node: RedisServer, timeout: float = 60) -> None:
        """Until ``node``, asked directly, is a replica with its link to its primary up."""

        def is_replica() -> bool:
            with contextlib.suppress(RedisError), Redis("127.0.0.1", node.port) as client:
                info = client.info("replication")
                return info.get("role") == "slave" and info.get("master_link_status") == "up"
            return False

        wait_for(is_replica, timeout, f"node {node.port} to rejoin as a replica", interval=0.2)
