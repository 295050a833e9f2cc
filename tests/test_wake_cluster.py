"""DecisionWaiter on a Redis Cluster: sharded wake-ups, one pub/sub connection per primary, failover.

Decisions here come from a small script built from the same Lua parts as the request scripts: it
sets a bare request's state and calls ``announce()``, as ``finish`` and ROUTE do, so the waiter is
tested on its own (the whole flow on a cluster: ``test_cluster_failover``, the ``ON_BOTH`` suites)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import (
    ClusterDownError,
    ConnectionError,
    RedisClusterException,
    ResponseError,
    TimeoutError,
)

from bot.approvals import keys
from bot.approvals.lua.chain import CHAIN
from bot.approvals.lua.fill import script
from bot.approvals.lua.request import DECIDERS, REQUEST
from bot.approvals.model import request_id_for
from bot.approvals.wake import DecisionWaiter
from bot.redis_client import RedisClient, connect
from tests.conftest import cancelled, within
from tests.fakes.redis_cluster import client as node_client

DECIDE = script(
    CHAIN,
    DECIDERS,
    REQUEST,
    """
-- KEYS: the request hash. ARGV: its id, its new state. Result: 1.
redis.call('HSET', KEYS[1], 'state', ARGV[2])
announce()
return 1
""",
)
WAITER = "waiter-under-test"


def one_per_shard(tag: str) -> list[str]:
    """A request id in each of the 12 shards."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < keys.SHARDS:
        request_id = request_id_for(f"toolu_{tag}_{n}")
        found.setdefault(keys.shard_of(request_id), request_id)
        n += 1
    return [found[shard] for shard in range(keys.SHARDS)]


async def decide(redis: RedisClient, request_id: str, state: str = "approved") -> None:
    await redis.register_script(DECIDE)(keys=[keys.request(request_id)], args=[request_id, state])


def waiter_of(redis: RedisClient, recheck_interval: float) -> DecisionWaiter:
    async def ended(ids: list[str]) -> set[str]:
        return {i for i in ids if await redis.hget(keys.request(i), "state") is not None}

    return DecisionWaiter(redis, keys.DECISION_CHANNELS, ended, recheck_interval=recheck_interval)


def waiting(waiter: DecisionWaiter, redis: RedisClient, request_id: str) -> asyncio.Task[bytes | None]:
    async def state() -> bytes | None:
        value: bytes | None = await redis.hget(keys.request(request_id), "state")
        return value

    return asyncio.create_task(waiter.wait(request_id, state, timeout=None), name=f"wait-{request_id}")


def subscribers(ports: list[int]) -> dict[int, int]:
    """Per node: the waiter's pub/sub connections."""
    counts = {}
    for port in ports:
        with node_client(port) as node:
            counts[port] = sum(1 for c in node.client_list(_type="pubsub") if c["name"] == WAITER)
    return counts


@pytest.fixture
async def waiter_client(one_node_cluster) -> AsyncIterator[RedisClient]:
    client = connect(one_node_cluster.url, name=WAITER, max_connections=3)
    await client.flushall()
    yield client
    await client.aclose()


async def test_a_waiter_on_a_cluster_wakes_on_each_shards_channel(one_node_cluster, waiter_client):
    waiter = waiter_of(waiter_client, recheck_interval=60)  # woken by the messages, not the re-check
    await waiter.start()
    try:
        ids = one_per_shard("one")
        waits = [waiting(waiter, waiter_client, i) for i in ids]
        await asyncio.sleep(0.1)
        assert not any(w.done() for w in waits)
        assert subscribers([one_node_cluster.port]) == {one_node_cluster.port: 1}
        for request_id in ids:
            await decide(waiter_client, request_id)
        async with within(5, "a decision on a shard channel did not wake its wait"):
            assert await asyncio.gather(*waits) == [b"approved"] * keys.SHARDS
    finally:
        await waiter.close()


async def test_a_script_may_announce_only_on_its_own_shards_channel(waiter_client):
    other = script("""
-- KEYS: a request hash. ARGV: a channel. Result: subscribers reached.
return redis.call('SPUBLISH', ARGV[1], 'x')
""")
    request_id = one_per_shard("own")[0]
    run = waiter_client.register_script(other)
    assert await run(keys=[keys.request(request_id)], args=[keys.decisions(0)]) == 0
    with pytest.raises(ResponseError, match="same slot"):
        await run(keys=[keys.request(request_id)], args=[keys.decisions(1)])


async def test_a_lost_cluster_subscription_comes_back_and_rechecks(one_node_cluster, waiter_client):
    waiter = waiter_of(waiter_client, recheck_interval=60)
    await waiter.start()
    try:
        request_id = one_per_shard("lost")[5]
        wait = waiting(waiter, waiter_client, request_id)
        await asyncio.sleep(0.1)
        with node_client(one_node_cluster.port) as node:
            assert node.client_kill_filter(_type="pubsub") >= 1
            # Set while nobody listens: the message is lost, only the re-check finds it.
            node.hset(keys.request(request_id), "state", "denied")
        async with within(10, "the re-subscription did not re-check the waits"):
            assert await wait == b"denied"
    finally:
        await waiter.close()


async def _retried(action) -> None:
    """``action()`` until the cluster answers again (a failover in progress)."""
    async with within(30, "the cluster did not come back after the failover"):
        while True:
            try:
                return await action()
            except (ConnectionError, ClusterDownError, RedisClusterException, TimeoutError):
                await asyncio.sleep(0.2)


@pytest.mark.slow
async def test_waits_on_three_primaries_survive_a_primary_killed_under_them(cluster):
    redis = connect(cluster.url, name=WAITER, max_connections=4)
    assert isinstance(redis, RedisCluster)
    await redis.initialize()
    waiter = waiter_of(redis, recheck_interval=60)
    await waiter.start()
    undecided: list[asyncio.Task[bytes | None]] = []
    try:
        before, after, never = one_per_shard("before"), one_per_shard("after"), one_per_shard("never")
        waits = {i: waiting(waiter, redis, i) for i in before + after}
        undecided = [waiting(waiter, redis, i) for i in never]
        await asyncio.sleep(0.2)
        # One connection per primary, whatever the number of waits (36 here, over 12 shards).
        assert sorted(subscribers(cluster.primaries()).values()) == [1, 1, 1]

        for request_id in before:  # one at a time: none may wait while the reader listens elsewhere
            await decide(redis, request_id)
            async with within(1, "a decision on one primary waited for another primary's messages"):
                assert await waits[request_id] == b"approved"

        victim = redis.get_node_from_key(keys.decisions(0))
        cluster.processes.kill(victim.port)
        for request_id in after:  # the killed primary's shards (0-3) wait for its replica
            await _retried(lambda request_id=request_id: decide(redis, request_id, "denied"))
        async with within(30, "a wait begun before the failover did not end after it"):
            assert await asyncio.gather(*(waits[i] for i in after)) == [b"denied"] * keys.SHARDS
        assert len(cluster.primaries()) == 3
        assert sorted(subscribers(cluster.primaries()).values()) == [1, 1, 1]

        # Nothing ends a wait but a decision: those never decided still wait.
        await asyncio.sleep(0.5)
        assert not any(w.done() for w in undecided)
        for request_id in never:
            assert await redis.hget(keys.request(request_id), "state") is None
    finally:
        await cancelled(*undecided)
        await waiter.close()
        await redis.aclose()
