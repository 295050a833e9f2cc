"""A request's life through a real bot worker, the fake Slack API and real Redis."""

from __future__ import annotations

import asyncio
import copy

from bot.approvals import keys
from bot.approvals.model import request_id_for
from bot.slack.ids import Action
from tests.audit_streams import audit_stream
from tests.cluster_fixtures import ON_BOTH
from tests.conftest import cancelled, context, posted, within
from tests.fakes.bot_settings import CHANNEL


def _buttons(message) -> list[str]:
    return [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


def _shown(message) -> str:
    """Everything a person reads in the message, flattened."""
    parts = [message.text]
    for block in message.blocks:
        text = block.get("text")
        if isinstance(text, dict):
            parts.append(text["text"])
        for element in block.get("elements", []):
            if isinstance(element.get("text"), str):
                parts.append(element["text"])
    return "\n".join(parts)


@ON_BOTH
async def test_approve_posts_once_updates_the_message_and_allows(start_worker, make_approver, slack):
    worker = await start_worker()
    approver = await make_approver(agent_name="deploy-bot")
    tool_input = {"command": "kubectl rollout restart deploy/api", "description": "Restart the API"}
    decision = asyncio.create_task(approver.can_use_tool("Bash", tool_input, context("toolu_approve")))

    message = await posted(slack)
    assert message.channel == CHANNEL
    assert "kubectl rollout restart deploy/api" in _shown(message)
    assert "deploy-bot" in _shown(message)
    assert _buttons(message) == [Action.APPROVE, Action.MODIFY, Action.DENY, Action.DENY_STOP]

    await worker.click("U_ALICE", Action.APPROVE, message, name="alice")
    result = await asyncio.wait_for(decision, 5)
    assert result.behavior == "allow"
    assert result.updated_input == tool_input

    await slack.wait_for(lambda: slack.message(message.channel, message.ts).edits >= 1)
    shown = slack.message(message.channel, message.ts)
    assert _buttons(shown) == []
    assert "Approved by <@U_ALICE>" in _shown(shown)
    # The channel shows one message, the one clicked. Counted from what Slack shows, as
    # posted() finds it, not from chat.postMessage calls: a thread reply (the outcome's
    # line, where people wrote in the thread) and an attempt Slack refused (a 429 the
    # worker retried) are no second request message.
    assert [m.ts for m in slack.roots()] == [message.ts]


@ON_BOTH
async def test_deny_opens_a_modal_and_the_reason_reaches_the_model_verbatim(
    start_worker, make_approver, slack
):
    worker = await start_worker()
    approver = await make_approver()
    decision = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "rm -rf build/"}, context("toolu_deny"))
    )
    message = await posted(slack)

    reason = "Not on a Friday. Use `make clean` instead & ask <@U_OPS> first."
    response = await worker.deny("U_BOB", message, reason, name="bob")
    assert response.status == 200

    result = await asyncio.wait_for(decision, 5)
    assert result.behavior == "deny"
    assert "@bob" in result.message and "U_BOB" in result.message
    assert result.message.endswith(f"Reason: {reason}")

    await slack.wait_for(lambda: slack.message(message.channel, message.ts).edits >= 1)
    shown = slack.message(message.channel, message.ts)
    assert _buttons(shown) == []
    assert "Denied by <@U_BOB>" in _shown(shown)
    assert reason in _shown(shown)  # plain_text: shown literally, pings nobody


@ON_BOTH
async def test_double_click_and_racing_clicks_on_two_workers_make_one_decision(
    start_worker, make_approver, slack, redis
):
    first, second = await start_worker(), await start_worker()
    approver = await make_approver()
    decision = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "make deploy"}, context("toolu_race"))
    )
    message = await posted(slack)

    clickers = [f"U{i:03d}" for i in range(20)]
    await asyncio.gather(
        *(
            (first if i % 2 else second).click(user, Action.APPROVE, message)
            for i, user in enumerate(clickers)
        ),
        first.click(clickers[0], Action.APPROVE, message),
    )  # and a double click

    result = await asyncio.wait_for(decision, 5)
    assert result.behavior == "allow"
    audit = [fields for _id, fields in await audit_stream(redis)]
    approvals = [f for f in audit if f[b"event"] == b"approved"]
    assert len(approvals) == 1
    winner = approvals[0][b"actor"].decode()

    # Every losing click (21 clicks, one winner) is told who won, privately. Counted from what
    # Slack accepted: an attempt it refused (a 429 the worker retried) told nobody.
    def told_so_far() -> list:
        return [call for call in slack.calls_to("chat.postEphemeral") if call.ok]

    await slack.wait_for(lambda: len(told_so_far()) == len(clickers))
    told = told_so_far()
    expected = set(clickers) - {winner} | ({winner} if winner == clickers[0] else set())
    assert {c.args["user"] for c in told} == expected
    assert all(c.args["text"] == f"This request was already approved by <@{winner}>." for c in told)
    await slack.wait_for(lambda: slack.message(message.channel, message.ts).edits >= 1)
    assert f"Approved by <@{winner}>" in _shown(slack.message(message.channel, message.ts))


@ON_BOTH
async def test_two_workers_post_each_request_once(start_worker, make_approver, slack):
    await start_worker()
    await start_worker()
    approver = await make_approver()
    asks = [
        asyncio.create_task(
            approver.can_use_tool("Bash", {"command": f"echo {i}"}, context(f"toolu_many_{i}"))
        )
        for i in range(30)
    ]
    await slack.wait_for(lambda: len(slack.calls_to("chat.postMessage")) >= 30)
    await asyncio.sleep(0.3)  # let any duplicate show up
    commands = [c.args["text"] for c in slack.calls_to("chat.postMessage")]
    assert len(commands) == 30 == len(set(commands))
    await cancelled(*asks)


@ON_BOTH
async def test_expiry_denies_updates_the_message_and_later_clicks_change_nothing(
    start_worker, make_approver, slack
):
    worker = await start_worker()
    approver = await make_approver(timeout=0.5)
    result_task = asyncio.create_task(
        approver.can_use_tool("Write", {"file_path": "/etc/motd", "content": "hi"}, context("toolu_exp"))
    )
    message = await posted(slack)
    stale = copy.deepcopy(message)  # what a client that has not refreshed still shows

    result = await asyncio.wait_for(result_task, 5)
    assert result.behavior == "deny"
    assert "expired" in result.message and "Write" in result.message

    await slack.wait_for(lambda: slack.message(message.channel, message.ts).edits >= 1)
    shown = slack.message(message.channel, message.ts)
    assert _buttons(shown) == []
    assert "Expired" in _shown(shown)

    await worker.click("U_LATE", Action.APPROVE, stale)
    call = await slack.wait_for_call("chat.postEphemeral")
    assert call.args["user"] == "U_LATE" and "expired" in call.args["text"]
    assert "Expired" in _shown(slack.message(message.channel, message.ts))


@ON_BOTH
async def test_expiry_is_enforced_by_workers_when_no_agent_waits(start_worker, store, slack):
    from bot.approvals.model import NewRequest

    await start_worker()
    new = NewRequest(
        id=request_id_for("toolu_orphan"), tool_name="Bash", tool_input={"command": "ls"}, timeout=0.3
    )
    await store.create(new)
    message = await posted(slack)
    await slack.wait_for(lambda: slack.message(message.channel, message.ts).edits >= 1)
    assert (await store.get(new.id)).state == "expired"
    assert "Expired" in _shown(slack.message(message.channel, message.ts))


async def test_cancelled_call_marks_the_request_and_reraises(start_worker, make_approver, slack, store):
    worker = await start_worker()
    approver = await make_approver()
    task = asyncio.create_task(approver.can_use_tool("Bash", {"command": "sleep 1"}, context("toolu_cancel")))
    message = await posted(slack)
    stale = copy.deepcopy(message)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the cancellation was swallowed")
    await slack.wait_for(lambda: slack.message(message.channel, message.ts).edits >= 1)
    assert "Cancelled" in _shown(slack.message(message.channel, message.ts))

    await worker.click("U_LATE", Action.APPROVE, stale)
    call = await slack.wait_for_call("chat.postEphemeral")
    assert "cancelled" in call.args["text"]


async def test_a_post_slack_refuses_denies_as_undeliverable(start_worker, make_approver, slack):
    await start_worker()
    approver = await make_approver(channel="C0GONE")  # a channel Slack does not know
    result = await asyncio.wait_for(
        approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_undeliverable")), 5
    )
    assert result.behavior == "deny"
    assert "could not be posted to Slack (channel_not_found)" in result.message
    assert slack.messages == {}


async def test_rate_limited_post_is_retried_off_the_request_path(start_worker, make_approver, slack):
    worker = await start_worker()
    slack.rate_limit("chat.postMessage", retry_after=1, times=1)
    approver = await make_approver()
    decision = asyncio.create_task(approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_429")))
    message = await posted(slack)  # after the 429
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]
    assert len(slack.roots()) == 1
    await worker.click("U_ALICE", Action.APPROVE, message)
    assert (await asyncio.wait_for(decision, 5)).behavior == "allow"


@ON_BOTH
async def test_a_worker_that_dies_holding_a_job_leaves_it_to_another(
    start_worker, make_approver, slack, redis
):
    from bot.approvals.queue import JobQueue

    # A worker takes the post job and dies before posting (it never acks).
    shard = keys.shard_of(request_id_for("toolu_orphan_job"))
    dead = JobQueue(redis, "dead-worker", retry_after=0.2)
    await dead.ensure_group(shard)
    approver = await make_approver()
    decision = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_orphan_job"))
    )
    taken: list = []
    async with within(5, "the approver's post job never reached the jobs stream"):
        while not taken:
            taken = await dead.take(shard, count=10, block_ms=200)
    assert taken[0].kind == "post"

    worker = await start_worker(job_retry_after=0.2)
    message = await posted(slack)
    await worker.click("U_ALICE", Action.APPROVE, message)
    assert (await asyncio.wait_for(decision, 5)).behavior == "allow"
    await asyncio.sleep(0.5)  # more sweeps: nothing is posted twice
    assert len(slack.roots()) == 1
    assert await redis.xpending(keys.jobs(shard), keys.JOBS_GROUP) == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }


async def test_a_post_job_that_keeps_failing_denies_instead_of_leaving_the_agent_waiting(
    redis, store, slack, make_approver
):
    import dataclasses

    from bot.approvals.policy import Policy
    from bot.approvals.queue import JobQueue
    from bot.slack.jobs import MAX_DELIVERIES, SlackJobWorker

    shard = keys.shard_of(request_id_for("toolu_doomed"))
    queue = JobQueue(redis, "flaky-worker", retry_after=60)
    await queue.ensure_group(shard)
    worker = SlackJobWorker(
        store, queue, slack.client(), policy=Policy(), default_channel=CHANNEL, sweep_interval=60
    )

    async def bug(groups) -> None:  # a fault no retry can mend
        raise RuntimeError("bug while preparing the post")

    worker.directory.warm = bug
    approver = await make_approver(timeout=0)  # the agent would wait forever
    call = asyncio.create_task(approver.can_use_tool("Bash", {"command": "make"}, context("toolu_doomed")))
    jobs: list = []
    async with within(5, "the approver's post job never reached the jobs stream"):
        while not jobs:
            jobs = await queue.take(shard, count=1, block_ms=200)
    await worker._run(dataclasses.replace(jobs[0], deliveries=MAX_DELIVERIES))  # its last delivery

    result = await asyncio.wait_for(call, 5)
    assert result.behavior == "deny"
    assert "could not be posted to Slack (the worker kept failing)" in result.message
    assert slack.roots() == []
