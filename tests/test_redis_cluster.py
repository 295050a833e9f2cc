"""Redis Cluster and Sentinel: the client ``connect()`` builds, the shard layout of the keys,
and what the scripts may touch on a cluster (issue 18; real servers, ``tests.fakes.redis_cluster``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import (
    ClusterDownError,
    ConnectionError,
    MaxConnectionsError,
    RedisClusterException,
    ResponseError,
    TimeoutError,
)

from bot import SlackApprover
from bot.approvals import keys
from bot.approvals.audit import AuditLog
from bot.approvals.lua.fill import script
from bot.approvals.model import Decision, State, request_id_for
from bot.approvals.policy import Action, Route
from bot.approvals.store import RequestStore
from bot.redis_client import MINIMUM_SERVER, connect, server_version
from bot.redis_topology import QueuedCluster, Topology
from bot.settings import Settings
from bot.slack.budget import SlackBudget
from tests.conftest import context, within


def slot(key: str) -> int:
    return int(key_slot(key.encode()))


# -- the shard layout --------------------------------------------------------------------------


def test_each_shard_tag_lies_in_its_own_twelfth_of_the_slots():
    assert len(keys.SHARD_TAGS) == keys.SHARDS == 12
    twelfth = REDIS_CLUSTER_HASH_SLOTS / keys.SHARDS
    assert [int(slot(tag) // twelfth) for tag in keys.SHARD_TAGS] == list(range(keys.SHARDS))


def test_shard_of_is_crc32_of_the_id_modulo_12():
    assert [keys.shard_of(i) for i in ("a", "req-1", "-", request_id_for("toolu_1"))] == [3, 5, 4, 11]
    spread = {keys.shard_of(request_id_for(f"toolu_{n}")) for n in range(200)}
    assert spread == set(range(keys.SHARDS))


def test_a_requests_own_keys_share_its_shards_slot():
    for request_id in ("a", request_id_for("toolu_1"), request_id_for("toolu_2")):
        tag_slot = slot(keys.SHARD_TAGS[keys.shard_of(request_id)])
        own = [keys.request, keys.votes, keys.thread, keys.thread_read, keys.render_lock]
        assert {slot(key(request_id)) for key in own} == {tag_slot}


def test_each_shards_audit_chain_lies_in_its_slot():
    for shard, tag in enumerate(keys.SHARD_TAGS):
        assert {slot(key) for key in keys.audit(shard)} == {slot(tag)}
        assert {slot(key) for key in keys.audit_script_keys(shard)} == {slot(tag)}


def test_every_key_a_request_script_is_passed_lies_in_the_requests_slot():
    for request_id in ("a", request_id_for("toolu_1"), request_id_for("toolu_2")):
        assert {slot(key) for key in keys.script_keys(request_id)} == {slot(keys.request(request_id))}


def test_each_shards_structures_lie_in_its_slot():
    for shard, tag in enumerate(keys.SHARD_TAGS):
        shared = [keys.jobs, keys.deadlines, keys.pending, keys.pending_routes, keys.decisions]
        assert {slot(key(shard)) for key in shared} == {slot(tag)}


async def test_an_agent_on_a_cluster_waits_for_the_decision_and_gets_it(one_node_cluster, cluster_redis):
    """Every step of the request (create, route, decide, the wake-up) runs in its shard's slot."""
    store = RequestStore(cluster_redis)
    agent = SlackApprover(one_node_cluster.url, timeout=30)
    try:
        call = asyncio.create_task(agent.can_use_tool("Bash", {"command": "ls"}, context("toolu_c")))
        request_id = request_id_for("toolu_c")
        async with within(10, "the agent never stored its request"):
            while await store.get(request_id) is None:
                await asyncio.sleep(0.02)
        assert (
            await store.route(request_id, Route(rule="default", action=Action.ASK, approvers=("U0ALICE",)))
            is State.PENDING
        )
        assert await store.pending() == [request_id]
        assert not call.done()
        approval = Decision(State.APPROVED, actor="U0ALICE", actor_name="alice", revision=0)
        assert (await store.decide(request_id, approval)).won
        result = await asyncio.wait_for(call, 10)
    finally:
        await agent.close()
        await store.aclose()
    assert result.behavior == "allow"
    assert await RequestStore(cluster_redis).pending() == []
    assert all(verdict.ok for verdict in await AuditLog(cluster_redis).verify_all())


async def test_a_script_reaching_a_key_of_another_slot_fails_on_a_cluster_node_only(redis_or_cluster):
    sneaky = script("""
-- KEYS: one key. ARGV: none. Result: the value of a key it was not passed.
redis.call('SET', KEYS[1], 'written')
return redis.call('GET', 'elsewhere')
""")
    run = redis_or_cluster.register_script(sneaky)
    if isinstance(redis_or_cluster, RedisCluster):
        with pytest.raises(ResponseError, match="do not hash to the same slot"):
            await run(keys=["here"])
        assert await redis_or_cluster.get("here") == b"written"  # not rolled back: why KEYS must be complete
    else:
        assert await run(keys=["here"]) is None  # a standalone server would never tell


async def test_the_slack_budget_runs_on_a_cluster_node(cluster_redis):
    budget = SlackBudget(cluster_redis)
    assert await budget.take("chat.postMessage", "C1") == 0.0
    await budget.pause("chat.update", "", 5)
    assert await budget.take("chat.update") > 4
    await budget.aclose()


async def test_the_server_is_recent_enough_for_the_scripts(redis_or_cluster):
    assert await server_version(redis_or_cluster) >= MINIMUM_SERVER


# -- the client --------------------------------------------------------------------------------


def test_settings_and_url_choose_the_topology():
    assert Settings(redis_url="redis://h/0").redis_topology() == Topology()
    assert Settings(redis_cluster=True).redis_topology() == Topology(cluster=True)
    sentinel = Settings(redis_sentinels="10.0.0.1:26379, [::1]:26380", redis_sentinel_master="main")
    assert sentinel.redis_topology() == Topology(
        sentinels=(("10.0.0.1", 26379), ("::1", 26380)), sentinel_master="main"
    )
    with pytest.raises(ValueError, match="REDIS_SENTINEL_MASTER"):
        Settings(redis_sentinels="h:1").redis_topology()
    with pytest.raises(ValueError, match="not host:port"):
        Settings(redis_sentinels="h", redis_sentinel_master="m").redis_topology()
    with pytest.raises(ValueError, match="exclude each other"):
        Topology(cluster=True, sentinels=(("h", 1),), sentinel_master="m")


@pytest.mark.parametrize(
    "topology",
    [
        Topology(),
        Topology(cluster=True),
        Topology(sentinels=(("10.0.0.1", 26379), ("::1", 26380)), sentinel_master="main"),
    ],
)
async def test_the_gate_hook_reaches_redis_the_way_its_approver_does(topology):
    # Claude Code starts the hook with the options' env: without the topology it would
    # take REDIS_URL for a single primary, and deny every call on a Sentinel deployment.
    approver = SlackApprover("redis://10.0.0.9:6379/0", redis_topology=topology)
    try:
        env = approver.options().env
    finally:
        await approver.close()
    hook = Settings(_env_file=None, **{name.lower(): value for name, value in env.items()})
    assert hook.redis_url == "redis://10.0.0.9:6379/0"
    assert hook.redis_topology() == topology


async def test_a_cluster_url_or_setting_builds_a_queued_cluster_client(one_node_cluster):
    plain = one_node_cluster.url.replace("redis+cluster://", "redis://")
    for client in (
        connect(one_node_cluster.url, name="tests"),
        connect(plain, name="tests", topology=Topology(cluster=True)),
    ):
        assert isinstance(client, QueuedCluster)
        assert await client.ping()
        await client.aclose()
    standalone = connect(plain, name="tests")
    assert isinstance(standalone, Redis)
    await standalone.aclose()


async def test_a_burst_queues_for_a_full_cluster_pool_instead_of_failing(one_node_cluster, cluster_redis):
    await cluster_redis.set("k", "v")
    bare = RedisCluster.from_url(one_node_cluster.url.replace("+cluster", ""), max_connections=3)
    replies = await asyncio.gather(*(bare.get("k") for _ in range(500)), return_exceptions=True)
    assert any(isinstance(r, MaxConnectionsError) for r in replies)  # why QueuedCluster exists
    await bare.aclose()

    client = connect(one_node_cluster.url, name="burst", max_connections=3)

    async def piped(n: int) -> list[object]:
        async with client.pipeline() as pipe:
            return await pipe.get("k").set(f"p{n}", n).execute()

    gets = [client.get("k") for _ in range(10_000)]
    pipes = [piped(n) for n in range(200)]
    results = await asyncio.wait_for(asyncio.gather(*gets, *pipes), 60)
    assert results[:10_000] == [b"v"] * 10_000 and results[10_000:] == [[b"v", True]] * 200
    named = [c for c in await cluster_redis.client_list() if c["name"] == "burst"]
    assert 1 <= len(named) <= 3
    await client.aclose()


async def test_a_command_split_over_slots_does_not_wait_for_its_own_permit(one_node_cluster):
    # redis-py runs a multi-slot DEL or MGET as a pipeline inside execute_command, and a
    # pipeline retries failed commands through execute_command: both within one permit.
    client = connect(one_node_cluster.url, name="tests", max_connections=2)  # a single permit
    try:
        names = [keys.request(f"r{n}") for n in range(24)]  # all 12 shards' slots
        async with client.pipeline() as pipe:
            await asyncio.wait_for(pipe.mset_nonatomic(dict.fromkeys(names, "1")).execute(), 10)
        found = [client.execute_command("EXISTS", *names) for _ in range(20)]
        assert await asyncio.wait_for(asyncio.gather(*found), 10) == [24] * 20
    finally:
        await client.aclose()


@pytest.fixture
async def cluster_client(cluster) -> AsyncIterator[RedisCluster]:
    """A client of the 3-primary cluster, its slot map read."""
    client = connect(cluster.url, name="tests", max_connections=4)
    assert isinstance(client, RedisCluster)
    await client.initialize()
    yield client
    await client.aclose()


@pytest.mark.slow
async def test_the_shards_spread_evenly_over_three_primaries(cluster, cluster_client):
    owners = [cluster_client.get_node_from_key(keys.request(tag)).port for tag in keys.SHARD_TAGS]
    by_primary = sorted(owners.count(port) for port in set(owners))
    assert by_primary == [4, 4, 4] and set(owners) == set(cluster.primaries())
    gets = [cluster_client.get(keys.request(f"r{n}")) for n in range(5_000)]
    assert await asyncio.wait_for(asyncio.gather(*gets), 60) == [None] * 5_000


@pytest.mark.slow
async def test_the_client_follows_a_primary_killed_under_it(cluster, cluster_client):
    shard_keys = [keys.request(tag) for tag in keys.SHARD_TAGS]
    for key in shard_keys:
        await cluster_client.set(key, key)
    victim = cluster_client.get_node_from_key(shard_keys[0])
    assert await cluster_client.execute_command("WAIT", 1, 5000, target_nodes=victim) == 1  # replicated
    cluster.processes.kill(victim.port)
    async with within(30, "the keys of the killed primary's shards never came back"):
        while True:
            try:
                values = await asyncio.gather(*(cluster_client.get(key) for key in shard_keys))
                break
            except (ConnectionError, ClusterDownError, RedisClusterException, TimeoutError):
                await asyncio.sleep(0.2)
    assert values == [key.encode() for key in shard_keys]
    assert len(cluster.primaries()) == 3  # its replica took over
