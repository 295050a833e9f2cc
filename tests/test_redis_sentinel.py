"""Sentinel: agents and workers follow the primary the Sentinels name, across a failover
(real ``redis-server --sentinel`` processes, ``tests.fakes.redis_cluster.SentinelSetup``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from bot import SlackApprover
from bot.approvals.model import Decision, State, request_id_for
from bot.approvals.store import RequestStore
from bot.redis_client import WORKER_CLIENT_NAME, RedisClient, Topology, connect
from tests.conftest import context, within
from tests.fakes.redis_cluster import SentinelSetup

pytestmark = pytest.mark.slow

URL = "redis://sentinel-named/0"
"""With Sentinels the URL gives only what the primary's connections need (here: database 0)."""


@asynccontextmanager
async def agent_and_worker(sentinels: SentinelSetup) -> AsyncIterator[tuple[SlackApprover, RedisClient]]:
    """An agent and a worker's client, both finding the primary through the Sentinels."""
    topology = Topology(sentinels=sentinels.addresses, sentinel_master=sentinels.MASTER)
    agent = SlackApprover(URL, redis_topology=topology, timeout=120)
    worker = connect(URL, name=WORKER_CLIENT_NAME, topology=topology)
    try:
        yield agent, worker
    finally:
        await agent.close()
        await worker.aclose()


async def stored(store: RequestStore, tool_use_id: str) -> str:
    request_id = request_id_for(tool_use_id)
    async with within(10, "the agent never stored its request"):
        while (await store.get(request_id)) is None:
            await asyncio.sleep(0.02)
    return request_id


async def fail_over(sentinels: SentinelSetup, worker: RedisClient) -> None:
    """Crash the primary once the replica has every write so far, and wait for its promotion."""
    # Replication is asynchronous: without the WAIT, the crash could lose the last writes.
    assert await worker.execute_command("WAIT", 1, 5000) == 1
    old = sentinels.master()
    sentinels.processes.kill(old)
    async with within(30, "the Sentinels never promoted the replica"):
        while sentinels.master() == old:
            await asyncio.sleep(0.1)


async def test_a_wait_started_before_a_failover_is_woken_by_a_decision_after_it(sentinels):
    async with agent_and_worker(sentinels) as (agent, worker):
        store = RequestStore(worker)
        call = asyncio.create_task(agent.can_use_tool("Bash", {"command": "ls"}, context("toolu_failover")))
        request_id = await stored(store, "toolu_failover")
        await fail_over(sentinels, worker)
        await asyncio.sleep(1)  # the agent's subscription and commands meet the dead primary meanwhile
        assert not call.done(), "the call ended without a decision"

        request = await store.get(request_id)
        assert request is not None and request.state is State.PENDING
        assert (await store.decide(request_id, Decision(State.APPROVED, actor="U1", revision=0))).won
        async with within(30, "the waiting agent was not woken on the new primary"):
            assert (await call).behavior == "allow"


async def test_a_call_denied_before_a_failover_stays_denied(sentinels):
    async with agent_and_worker(sentinels) as (agent, worker):
        store = RequestStore(worker)
        call = asyncio.create_task(
            agent.can_use_tool("Bash", {"command": "rm -rf /"}, context("toolu_denied"))
        )
        request_id = await stored(store, "toolu_denied")
        assert (await store.decide(request_id, Decision(State.DENIED, actor="U1", revision=0))).won
        async with within(10, "the agent was not woken"):
            assert (await call).behavior == "deny"
        await fail_over(sentinels, worker)

        # The promoted replica holds the denial: a late approval loses, asking again stays denied.
        assert not (await store.decide(request_id, Decision(State.APPROVED, actor="U2", revision=0))).won
        again = agent.can_use_tool("Bash", {"command": "rm -rf /"}, context("toolu_denied"))
        assert (await asyncio.wait_for(again, 30)).behavior == "deny"
