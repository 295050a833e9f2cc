"""Sentinel: agents and workers follow the primary the Sentinels name, across a failover
(real ``redis-server --sentinel`` processes, ``tests.fakes.redis_cluster.SentinelSetup``)."""

from __future__ import annotations

import asyncio

import pytest

from bot import SlackApprover
from bot.approvals.model import Decision, State, request_id_for
from bot.approvals.store import RequestStore
from bot.redis_client import WORKER_CLIENT_NAME, Topology, connect
from tests.conftest import context, within

pytestmark = pytest.mark.slow


async def test_a_wait_started_before_a_failover_is_woken_by_a_decision_after_it(sentinels):
    topology = Topology(sentinels=sentinels.addresses, sentinel_master=sentinels.MASTER)
    # With Sentinels the URL gives only what the primary's connections need (here: database 0).
    agent = SlackApprover("redis://sentinel-named/0", redis_topology=topology, timeout=120)
    worker = connect("redis://sentinel-named/0", name=WORKER_CLIENT_NAME, topology=topology)
    store = RequestStore(worker)
    request_id = request_id_for("toolu_failover")
    try:
        call = asyncio.create_task(agent.can_use_tool("Bash", {"command": "ls"}, context("toolu_failover")))
        async with within(10, "the agent never stored its request"):
            while (await store.get(request_id)) is None:
                await asyncio.sleep(0.02)
        # Replication is asynchronous: make sure the request reached the replica before the crash.
        assert await worker.execute_command("WAIT", 1, 5000) == 1

        old = sentinels.master()
        sentinels.processes.kill(old)
        async with within(30, "the Sentinels never promoted the replica"):
            while sentinels.master() == old:
                await asyncio.sleep(0.1)
        await asyncio.sleep(1)  # the agent's subscription and commands meet the dead primary meanwhile
        assert not call.done(), "the call ended without a decision"

        request = await store.get(request_id)
        assert request is not None and request.state is State.PENDING
        decided = await store.decide(request_id, Decision(State.APPROVED, actor="U1", revision=0))
        assert decided.won
        async with within(30, "the waiting agent was not woken on the new primary"):
            result = await call
        assert result.behavior == "allow"
    finally:
        await agent.close()
        await worker.aclose()


async def test_a_call_denied_before_a_failover_stays_denied(sentinels):
    topology = Topology(sentinels=sentinels.addresses, sentinel_master=sentinels.MASTER)
    agent = SlackApprover("redis://sentinel-named/0", redis_topology=topology, timeout=120)
    worker = connect("redis://sentinel-named/0", name=WORKER_CLIENT_NAME, topology=topology)
    store = RequestStore(worker)
    request_id = request_id_for("toolu_denied")
    try:
        call = asyncio.create_task(
            agent.can_use_tool("Bash", {"command": "rm -rf /"}, context("toolu_denied"))
        )
        async with within(10, "the agent never stored its request"):
            while (await store.get(request_id)) is None:
                await asyncio.sleep(0.02)
        assert (await store.decide(request_id, Decision(State.DENIED, actor="U1", revision=0))).won
        assert await worker.execute_command("WAIT", 1, 5000) == 1
        async with within(10, "the agent was not woken"):
            assert (await call).behavior == "deny"

        old = sentinels.master()
        sentinels.processes.kill(old)
        async with within(30, "the Sentinels never promoted the replica"):
            while sentinels.master() == old:
                await asyncio.sleep(0.1)
        # The promoted replica holds the denial: a late approval loses, asking again stays denied.
        late = await store.decide(request_id, Decision(State.APPROVED, actor="U2", revision=0))
        assert not late.won
        again = await asyncio.wait_for(
            agent.can_use_tool("Bash", {"command": "rm -rf /"}, context("toolu_denied")), 30
        )
        assert again.behavior == "deny"
    finally:
        await agent.close()
        await worker.aclose()
