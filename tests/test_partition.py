"""A network partition: the primary alone on one side, its replicas, the sentinels and
the app on the other (harness/sentinel.py's partitioned set, with harness/tcp_proxy.py
between everyone and the primary).

What must hold: the primary cut off stops taking writes (min-replicas-to-write), so
nothing written on its side of the cut can be lost; the sentinels elect a replica; the
app follows and accepts thoughts there; and when the link comes back, the old primary
rejoins as a replica of the new one, with every accepted thought still there. The
last test removes the guard and shows the write it would have refused being lost.

The cut is the proxy's blackhole, not its reset: connections stay open and carry
nothing, as in a real partition. So the primary notices only as its replicas stop
acknowledging (after min-replicas-max-lag, the path this guard takes in production),
and a client waits out its socket timeout instead of being told at once. A reset cut
would drop the replicas' links at once, and the primary would refuse writes at once
too: a quicker test of a kinder failure than the one that needs the guard. What a
blackhole held is delivered when it heals, as after a real partition: commands the
app gave up on reach the old primary late, and it refuses them too.

Timings are printed (pytest -s), not asserted beyond the bounds of each wait.
"""

import time

import pytest
from redis import Redis
from redis.exceptions import ResponseError

from app import submissions
from harness.polling import wait_for
from harness.sentinel import MIN_REPLICAS_MAX_LAG
from harness.tcp_proxy import BLACKHOLE

pytestmark = pytest.mark.slow

# The primary counts a replica as lost once its last acknowledgement is more than
# MIN_REPLICAS_MAX_LAG seconds old (whole seconds, checked each second): give it that,
# and as long again for a loaded machine.
REFUSES_WITHIN = 2 * MIN_REPLICAS_MAX_LAG + 2
ELECTION_SECONDS = 30
# A POST may first wait out the app's socket timeout (5 s) on a connection the
# blackhole holds, and its limiter's too, before redis-py asks the sentinels again.
APP_FOLLOWS_SECONDS = 30
# The sentinels convert the old primary once it has answered for their failover-timeout
# (FAILOVER_TIMEOUT_MS), then it syncs.
REJOIN_SECONDS = 60
BEFORE_THE_CUT = 3


@pytest.fixture
def app_config(app_config, partitioned_set):
    return {
        **app_config,
        "REDIS_URL": partitioned_set.url,
        "REDIS_WAIT_REPLICAS": 1,
        "REDIS_WAIT_TIMEOUT_MS": 1000,
        "RATELIMIT_PER_CLIENT": "100000 per minute",
    }


def post(client, n: int):
    return client.post("/api/thoughts", json={"email": f"user{n}@example.com", "thought": f"t{n}"})


def accepted(client, n: int) -> str:
    response = post(client, n)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def direct(port: int) -> Redis:
    """A client of one node, not through the proxy: on the old primary's side of the cut."""
    return Redis("127.0.0.1", port, socket_connect_timeout=2, socket_timeout=2)


def refuses_writes(redis: Redis) -> bool:
    """A write command that changes nothing (DEL of a key that is not there): refused
    with NOREPLICAS by a primary short of replicas, harmless if it is taken."""
    try:
        redis.delete("workit:test:no-such-key")
    except ResponseError as exc:
        return "NOREPLICAS" in str(exc)
    return False


def replica_addresses(redis: Redis) -> set[str]:
    info = redis.info("replication")
    return {f"{v['ip']}:{v['port']}" for k, v in info.items() if k.startswith("slave")}


def stored(redis: Redis, ids: list[str]) -> list[str]:
    """Those of ``ids`` whose submission ``redis`` has."""
    return [sid for sid in ids if submissions.load(redis, sid) is not None]


def test_a_primary_cut_off_refuses_writes_and_rejoins_as_a_replica_with_nothing_lost(
    app, partitioned_set
):
    """The whole partition, in order: the cut, the refusal on the old primary's side,
    the election, the app on the new primary, the heal and the rejoin."""
    old = partitioned_set.nodes[0]
    assert partitioned_set.primary_port() == partitioned_set.proxy.port
    client = app.test_client()
    before = [accepted(client, n) for n in range(BEFORE_THE_CUT)]

    with direct(old.port) as on_old:
        assert stored(on_old, before) == before
        keys_before = set(on_old.scan_iter("workit:submission:*"))

        # The cut: the old primary, alone, stops taking writes.
        cut_at = time.monotonic()
        partitioned_set.proxy.cut(BLACKHOLE)
        wait_for(lambda: refuses_writes(on_old), REFUSES_WITHIN, "NOREPLICAS", interval=0.1)
        refused_after = time.monotonic() - cut_at
        # A client still on its side of the cut cannot store a submission there: the
        # web request's own transaction (app/thoughts.py), refused.
        with on_old.pipeline() as pipe:
            pipe.multi()
            stranded = submissions.create(pipe, "stranded@example.com", "on the cut-off side")
            with pytest.raises(ResponseError, match="NOREPLICAS"):
                pipe.execute()
        assert set(on_old.scan_iter("workit:submission:*")) == keys_before

        # The sentinels elect a replica; the app follows it.
        new_port = partitioned_set.wait_for_new_primary(
            partitioned_set.proxy.port, ELECTION_SECONDS
        )
        elected_after = time.monotonic() - cut_at
        assert new_port in [node.port for node in partitioned_set.nodes[1:]]
        answers = []

        def a_202() -> str | None:
            response = post(client, BEFORE_THE_CUT + len(answers))
            answers.append(response.status_code)
            return response.get_json()["id"] if response.status_code == 202 else None

        after = wait_for(a_202, APP_FOLLOWS_SECONDS, "a 202 on the new primary", interval=0.1)
        followed_after = time.monotonic() - cut_at
        assert set(answers) <= {202, 503}, answers
        shown = client.get(f"/api/thoughts/{after}")
        assert shown.status_code == 200 and shown.get_json()["id"] == after
        everything = [*before, after]
        with direct(new_port) as on_new:
            assert stored(on_new, everything) == everything

            # The link comes back: the old primary rejoins as a replica of the new one.
            healed_at = time.monotonic()
            partitioned_set.proxy.heal()
            partitioned_set.wait_for_replica(old, REJOIN_SECONDS)
            rejoined_after = time.monotonic() - healed_at
            assert on_old.info("replication")["master_port"] == new_port
            # Known by the proxy's address, as the sentinels reach it (replica-announce-port).
            assert partitioned_set.proxy.address in replica_addresses(on_new)
            assert partitioned_set.primary_port() == new_port
            wait_for(lambda: stored(on_old, everything) == everything, 10, "the old one to sync")
            assert stored(on_new, everything) == everything
            assert stored(on_new, [stranded.id]) == stored(on_old, [stranded.id]) == []
        shown = client.get(f"/api/thoughts/{before[0]}")
        assert shown.status_code == 200

    print(
        f"\npartition: NOREPLICAS {refused_after:.1f} s after the cut, new primary named by "
        f"{elected_after:.1f} s, the app's first 202 at {followed_after:.1f} s "
        f"(answers {answers}); rejoined as a replica {rejoined_after:.1f} s after the heal; "
        f"{len(everything)} accepted, 0 lost"
    )


@pytest.mark.parametrize(
    "partitioned_set", [{"min_replicas_to_write": 0}], indirect=True, ids=["no-guard"]
)
def test_without_min_replicas_to_write_a_cut_off_primary_takes_a_write_that_is_then_lost(
    app, partitioned_set
):
    """Why the guard: without it, a client on the old primary's side of the cut writes,
    the old primary says OK, and the write is gone once it rejoins (it takes the new
    primary's data in a full sync). The guarded test above refuses that very write."""
    old = partitioned_set.nodes[0]
    kept = accepted(app.test_client(), 0)
    lost_key = "workit:test:written-on-the-cut-off-side"

    with direct(old.port) as on_old:
        cut_at = time.monotonic()
        partitioned_set.proxy.cut(BLACKHOLE)

        def replicas_lost() -> bool:
            """The state in which the guard would refuse: no replica acknowledged
            within the lag."""
            info = on_old.info("replication")
            lags = [v["lag"] for k, v in info.items() if k.startswith("slave")]
            return bool(lags) and all(lag > MIN_REPLICAS_MAX_LAG for lag in lags)

        wait_for(replicas_lost, REFUSES_WITHIN, "the replicas to fall past the lag", interval=0.1)
        assert not refuses_writes(on_old)
        assert on_old.set(lost_key, "taken while cut off") is True
        assert on_old.get(lost_key) == b"taken while cut off"

        new_port = partitioned_set.wait_for_new_primary(
            partitioned_set.proxy.port, ELECTION_SECONDS
        )
        elected_after = time.monotonic() - cut_at
        with direct(new_port) as on_new:
            assert on_new.get(lost_key) is None

            healed_at = time.monotonic()
            partitioned_set.proxy.heal()
            partitioned_set.wait_for_replica(old, REJOIN_SECONDS)
            rejoined_after = time.monotonic() - healed_at
            wait_for(lambda: stored(on_old, [kept]) == [kept], 10, "the old one to sync")
            assert on_old.get(lost_key) is None, "the cut-off write survived the rejoin"
            assert on_new.get(lost_key) is None
            assert stored(on_new, [kept]) == [kept]

    print(
        f"\nno guard: the cut-off primary took a write; new primary named "
        f"{elected_after:.1f} s after the cut; rejoined {rejoined_after:.1f} s after the "
        "heal, and the write was gone"
    )
