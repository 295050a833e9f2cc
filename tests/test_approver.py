"""SlackApprover against real Redis: waiting, waking, and every way to fail closed.

Decisions are made through RequestStore here (what a worker does on a click);
the Slack side has its own tests.
"""

from __future__ import annotations

import asyncio

from bot import SlackApprover
from bot.approvals import keys
from bot.approvals.model import Decision, NewRequest, State, call_hash, mismatch_id, request_id_for
from bot.redis_client import AGENT_CLIENT_NAME
from tests.conftest import cancelled, context, within
from tests.fakes.redis_server import free_port


async def _until_pending(store, tool_use_id: str) -> str:
    """The call's request id, once the approver has stored the request."""
    request_id = request_id_for(tool_use_id)
    async with within(5, f"the approver never stored a request for {tool_use_id}"):
        while (await store.get(request_id)) is None:
            await asyncio.sleep(0.01)
    return request_id


async def _jobs(redis, kind: str) -> int:
    streams = [await redis.xrange(keys.jobs(shard)) for shard in keys.ALL_SHARDS]
    return sum(1 for entries in streams for _id, f in entries if f[b"kind"] == kind.encode())


async def test_asking_again_for_the_same_call_reuses_the_request_and_its_decision(
    make_approver, store, redis
):
    approver = await make_approver()
    first = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "make release"}, context("toolu_same"))
    )
    request_id = await _until_pending(store, "toolu_same")

    # The agent process restarts and the session asks again for the same call.
    restarted = await make_approver()
    again = asyncio.create_task(
        restarted.can_use_tool("Bash", {"command": "make release"}, context("toolu_same"))
    )
    await asyncio.sleep(0.1)
    assert not again.done()
    await store.decide(request_id, Decision(State.APPROVED, actor="U_ALICE", actor_name="alice", revision=0))

    assert (await first).behavior == "allow"
    assert (await again).behavior == "allow"
    # Asked once more after the decision: answered at once, still one request.
    later = await asyncio.wait_for(
        restarted.can_use_tool("Bash", {"command": "make release"}, context("toolu_same")), 1
    )
    assert later.behavior == "allow"
    assert await _jobs(redis, "post") == 1


async def test_allow_carries_the_input_the_approvers_saw(make_approver, store):
    approver = await make_approver()
    task = asyncio.create_task(approver.can_use_tool("Bash", {"command": "ls docs"}, context("toolu_seen")))
    request_id = await _until_pending(store, "toolu_seen")
    await store.decide(request_id, Decision(State.APPROVED, actor="U_ALICE", revision=0))
    assert (await task).updated_input == {"command": "ls docs"}
    # A repeated call with the same id but other arguments is another call: asked anew.
    replay = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "rm -rf docs"}, context("toolu_seen"))
    )
    other = mismatch_id(request_id, call_hash("Bash", {"command": "rm -rf docs"}))
    async with asyncio.timeout(5):
        while (asked := await store.get(other)) is None:
            await asyncio.sleep(0.02)
    assert asked.state is State.PENDING and asked.tool_input == {"command": "rm -rf docs"}
    assert not replay.done()
    await cancelled(replay)


async def test_redis_unreachable_denies_and_says_so():
    approver = SlackApprover(f"redis://127.0.0.1:{free_port()}/0", timeout=5)
    try:
        result = await approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_noredis"))
    finally:
        await approver.close()
    assert result.behavior == "deny"
    assert "could not be reached" in result.message and "ConnectionError" in result.message


async def test_an_internal_error_denies_instead_of_raising(make_approver):
    approver = await make_approver()
    result = await approver.can_use_tool("Custom", {"handle": object()}, context("toolu_bug"))
    assert result.behavior == "deny"
    assert result.message.startswith("Denied: the approval service failed (TypeError")


async def test_a_request_that_vanishes_from_redis_is_denied(make_approver, store, redis):
    approver = await make_approver()
    task = asyncio.create_task(approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_gone")))
    request_id = await _until_pending(store, "toolu_gone")
    await redis.delete(keys.request(request_id))
    await redis.spublish(keys.decisions(keys.shard_of(request_id)), request_id)
    result = await asyncio.wait_for(task, 2)
    assert result.behavior == "deny" and "disappeared" in result.message


async def test_many_waits_share_three_named_connections(make_approver, store, redis):
    approver = await make_approver()
    tasks = [
        asyncio.create_task(approver.can_use_tool("Bash", {"command": f"echo {i}"}, context(f"toolu_w{i}")))
        for i in range(300)
    ]
    ids = [await _until_pending(store, f"toolu_w{i}") for i in range(300)]
    agent = [c for c in await redis.client_list() if c["name"] == AGENT_CLIENT_NAME]
    assert 2 <= len(agent) <= 3  # the subscription and batched commands: never more than the pool's bound
    assert (
        sum(1 for c in agent if int(c["ssub"]) > 0) == 1
    )  # one subscription (SSUBSCRIBE) carries every wait

    await asyncio.gather(*(store.decide(i, Decision(State.APPROVED, actor="U1", revision=0)) for i in ids))
    results = await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert {r.behavior for r in results} == {"allow"}
    assert [r.updated_input["command"] for r in results] == [f"echo {i}" for i in range(300)]


async def test_a_decision_published_while_the_subscriber_is_disconnected_is_not_missed(
    make_approver, store, redis
):
    approver = await make_approver()
    task = asyncio.create_task(approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_drop")))
    request_id = await _until_pending(store, "toolu_drop")
    await asyncio.sleep(0.05)

    await redis.client_kill_filter(_type="pubsub")
    # Published while nobody is subscribed: the message itself is lost.
    await store.decide(request_id, Decision(State.APPROVED, actor="U_ALICE", revision=0))
    result = await asyncio.wait_for(task, 5)
    assert result.behavior == "allow"


async def test_a_redis_restart_while_waiting_loses_nothing(make_approver, store, redis_server):
    approver = await make_approver()
    task = asyncio.create_task(approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_restart")))
    request_id = await _until_pending(store, "toolu_restart")

    await asyncio.to_thread(redis_server.restart)
    # The test's own client reconnects too (redis-py retries on a closed connection).
    assert (await store.get(request_id)).state is State.PENDING  # kept by AOF
    await store.decide(request_id, Decision(State.DENIED, actor="U_BOB", reason="after restart"))
    result = await asyncio.wait_for(task, 10)
    assert result.behavior == "deny" and result.message.endswith("Reason: after restart")


async def test_timeout_zero_waits_until_decided(make_approver, store, redis):
    approver = await make_approver(timeout=0)
    task = asyncio.create_task(approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_forever")))
    request_id = await _until_pending(store, "toolu_forever")
    assert await redis.zscore(keys.deadlines(keys.shard_of(request_id)), request_id) is None
    await asyncio.sleep(0.5)
    assert not task.done()
    await store.decide(request_id, Decision(State.APPROVED, actor="U1", revision=0))
    assert (await asyncio.wait_for(task, 2)).behavior == "allow"


async def test_asking_again_after_the_deadline_passed_is_denied_as_expired(make_approver, store):
    # What an agent process that crashed mid-wait leaves behind: a pending
    # request whose deadline passes while no worker runs to expire it.
    await store.create(
        NewRequest(
            id=request_id_for("toolu_crash"), tool_name="Bash", tool_input={"command": "pwd"}, timeout=0.2
        )
    )
    await asyncio.sleep(0.3)
    fresh = await make_approver(timeout=60)
    result = await asyncio.wait_for(fresh.can_use_tool("Bash", {"command": "pwd"}, context("toolu_crash")), 2)
    assert result.behavior == "deny" and "expired" in result.message


async def test_closing_the_approver_denies_and_cancels_the_calls_still_waiting(make_approver, store):
    approver = await make_approver(timeout=0)
    waiting = asyncio.create_task(approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_closing")))
    request_id = await _until_pending(store, "toolu_closing")
    await approver.close()
    result = await asyncio.wait_for(waiting, 2)
    assert result.behavior == "deny" and "shut down" in result.message
    assert (await store.get(request_id)).state is State.CANCELLED


async def test_from_env_needs_only_redis(monkeypatch, redis_server, store, tmp_path):
    from bot.settings import MissingSetting

    monkeypatch.chdir(tmp_path)  # no .env here
    for name in ("REDIS_URL", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "APPROVAL_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    try:
        SlackApprover.from_env()
    except MissingSetting as missing:
        assert missing.name == "REDIS_URL"
    else:
        raise AssertionError("REDIS_URL is required")

    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("APPROVAL_TIMEOUT", "0.2")
    async with SlackApprover.from_env(agent_name="env-agent") as approver:  # no Slack token needed
        result = await asyncio.wait_for(
            approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_env")), 5
        )
    assert result.behavior == "deny" and "expired" in result.message  # APPROVAL_TIMEOUT was read
    assert (await store.get(request_id_for("toolu_env"))).agent == "env-agent"
