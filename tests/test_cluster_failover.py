"""A primary of the 3-primary cluster killed while requests wait and clicks arrive, with
``REDIS_WAIT_REPLICAS=1``: the replica takes over, the waits resume, no tool runs on an approval
the failover could take back, and every click the failover lost is recorded again."""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis.asyncio.cluster import RedisCluster

from bot.approvals import keys
from bot.approvals.model import request_id_for
from bot.approvals.store import RequestStore
from bot.redis_client import Topology, connect
from bot.slack.ids import Action
from tests.conftest import context, posted, within
from tests.fakes.redis_cluster import Cluster
from tests.fakes.redis_cluster import client as node_client

pytestmark = pytest.mark.slow


def one_call_per_shard() -> list[str]:
    """``tool_use_id``s whose requests fall in every shard, one each, in shard order."""
    by_shard: dict[int, str] = {}
    n = 0
    while len(by_shard) < keys.SHARDS:
        by_shard.setdefault(keys.shard_of(request_id_for(f"toolu_fo{n}")), f"toolu_fo{n}")
        n += 1
    return [by_shard[shard] for shard in keys.ALL_SHARDS]


def replica_of(cluster: Cluster, primary: int) -> int:
    for port in cluster.processes.by_port:
        with node_client(port) as node:
            info = node.info("replication")
            if info["role"] == "slave" and int(info["master_port"]) == primary:
                return port
    raise AssertionError(f"no replica of {primary}")


def _message_of(slack, request_id: str):
    [message] = [m for m in slack.roots() if request_id in str(m.blocks)]
    return message


async def _click_until_taken(worker, message) -> None:
    async with within(30, "a click was refused long after the failover"):
        while True:
            try:
                await worker.click("U_ALICE", Action.APPROVE, message)
                return
            except (AssertionError, OSError):
                await asyncio.sleep(0.5)


async def test_a_primary_killed_under_waits_and_clicks_loses_no_click_and_runs_nothing_unconfirmed(
    cluster: Cluster, start_worker, make_approver, slack, caplog
):
    caplog.set_level(logging.INFO, logger="bot.slack.confirming")
    worker = await start_worker(redis_url=cluster.url, redis_wait_replicas=1)
    agent = await make_approver(redis_url=cluster.url, redis_topology=Topology(cluster=True, wait_replicas=1))
    calls = one_call_per_shard()
    waits = {
        call: asyncio.create_task(agent.can_use_tool("Bash", {"command": f"echo {call}"}, context(call)))
        for call in calls
    }
    await posted(slack, len(calls))
    admin = connect(cluster.url, name="tests")
    assert isinstance(admin, RedisCluster)
    await admin.initialize()
    store = RequestStore(admin)
    try:
        async with within(20, "the posts were never recorded"):
            while not all(
                r is not None and r.posted for r in await store.many([request_id_for(c) for c in calls])
            ):
                await asyncio.sleep(0.1)
        victim = admin.get_node_from_key(keys.request(request_id_for(calls[0]))).port
        lost = [c for c in calls if admin.get_node_from_key(keys.request(request_id_for(c))).port == victim]
        assert len(lost) == 4  # shards 0-3 live on the first primary
        for port in cluster.primaries():
            with node_client(port) as node:
                assert node.wait(1, 5000) == 1  # every post is on a replica before the cut

        # From now on the victim's writes reach no replica, then it dies while the clicks arrive.
        standby = replica_of(cluster, victim)
        cluster.processes.pause(standby)
        with node_client(victim) as node:
            assert node.client_kill_filter(_type="replica") == 1
        message_of = {c: _message_of(slack, request_id_for(c)) for c in calls}
        for call in lost:  # recorded on the victim alone
            await worker.click("U_ALICE", Action.APPROVE, message_of[call])
        cluster.processes.kill(victim)
        cluster.processes.resume(standby)
        # The other clicks arrive during the failover; one the cluster refuses meanwhile is shown to
        # its clicker as an error by Slack, and clicked again.
        kept = [c for c in calls if c not in lost]
        await asyncio.gather(*(_click_until_taken(worker, message_of[c]) for c in kept))

        async with within(30, "calls on the healthy primaries were not allowed"):
            results = await asyncio.gather(*(waits[c] for c in kept))
        assert [r.behavior for r in results] == ["allow"] * len(kept)
        # The promoted replica never had the lost clicks, and has no replica of its own yet:
        # nothing of the victim's shards may run.
        await asyncio.sleep(5)
        assert not any(waits[c].done() for c in lost), "allowed on an approval no replica holds"

        cluster.processes.restart(victim)  # back, as the promoted replica's replica
        async with within(60, "the lost clicks were never recorded again and confirmed"):
            results = await asyncio.gather(*(waits[c] for c in lost))
        assert [r.behavior for r in results] == ["allow"] * len(lost)
    finally:
        for task in waits.values():
            task.cancel()
        await store.aclose()
        await admin.aclose()
    said = [r.getMessage() for r in caplog.records]
    assert sum("lost in a failover, recorded again" in line for line in said) >= 1
    assert not [e for e in slack.ephemerals if "lost" in e.text]
