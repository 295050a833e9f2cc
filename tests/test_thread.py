"""The request's thread: people discuss there, the bot reports there, and the model hears it on a deny."""

from __future__ import annotations

import asyncio
import json

from bot.approvals import keys
from bot.approvals.model import request_id_for
from bot.demo.scripted_model import text
from bot.slack.ids import Action
from tests.conftest import CHANNEL, context, posted
from tests.fakes.agent_env import clean_agent_env
from tests.fakes.slack_api import BOT_ID, BOT_USER_ID
from tests.fakes.slack_payloads import event_callback, message_event
from tests.test_agent_e2e import run_agent, write_marker


async def eventually(probe, expected, timeout: float = 5.0) -> None:
    """Wait until ``await probe()`` returns ``expected`` (work done by a worker's job)."""
    async with asyncio.timeout(timeout):
        while await probe() != expected:
            await asyncio.sleep(0.02)


def said(slack, message, user: str, words: str):
    """A person replies in the request's thread; returns the ``message`` event Slack sends for it."""
    reply = slack.reply(message.channel, message.ts, user, words)
    return event_callback(message_event(message.channel, reply.ts, user, words, thread_ts=message.ts))


async def test_thread_replies_reach_the_model_on_deny(start_worker, make_approver, slack):
    slack.add_user("U0ALICE", "alice")
    slack.add_user("U0BOB", "bob")
    worker = await start_worker()
    approver = await make_approver()
    call = asyncio.create_task(approver.can_use_tool("Bash", {"command": "terraform destroy"}, context("toolu_discuss")))
    message = await posted(slack)

    first = said(slack, message, "U0ALICE", "this would drop the <@U0BOB> staging db")
    assert await worker.event(first) == 200
    assert await worker.event(first) == 200  # Slack's retry of the same delivery
    await worker.event(said(slack, message, "U0BOB", "agreed, use `plan` first"))
    # Neither the bot's own posts, nor edits, nor replies under other messages are discussion.
    await worker.event(event_callback(message_event(CHANNEL, "1700000099.000001", BOT_USER_ID, "bot", thread_ts=message.ts, bot_id=BOT_ID)))
    await worker.event(event_callback(message_event(CHANNEL, "1700000099.000002", "U0ALICE", "edited", thread_ts=message.ts, subtype="message_changed")))
    await worker.event(event_callback(message_event(CHANNEL, "1700000099.000003", "U0ALICE", "elsewhere", thread_ts="1690000000.000001")))

    await worker.deny("U0BOB", message, "destroying is not the fix", name="bob")
    result = await asyncio.wait_for(call, 5)
    assert result.behavior == "deny"
    assert result.message == (
        "Denied in Slack by @bob (U0BOB). The tool was not run. Reason: destroying is not the fix\n"
        "Discussion in Slack: @alice: this would drop the <@U0BOB> staging db / @bob: agreed, use `plan` first"
    )
    # The outcome is posted in the thread too.
    await slack.wait_for(lambda: any(m.by_bot for m in slack.thread(CHANNEL, message.ts)))
    [outcome] = [m for m in slack.thread(CHANNEL, message.ts) if m.by_bot]
    assert outcome.text.startswith(":no_entry: Denied by <@U0BOB>")


async def test_replies_slack_never_delivered_are_read_from_the_thread(start_worker, make_approver, slack, redis):
    """Events can be lost or not subscribed: Deny reads the thread (conversations.replies) while the reason is typed."""
    slack.add_user("U0ALICE", "alice")
    slack.add_user("U0CAROL", "carol")
    worker = await start_worker()
    approver = await make_approver()
    call = asyncio.create_task(approver.can_use_tool("Bash", {"command": "rm -rf build"}, context("toolu_unheard")))
    message = await posted(slack)
    for user, words in [("U0ALICE", "why build?"), ("U0CAROL", "it is the cache"), ("U0ALICE", "then fine, but not today")]:
        slack.reply(message.channel, message.ts, user, words)  # no events delivered

    await worker.click("U0CAROL", Action.DENY, message)
    # While the person types a reason, the worker reads the thread.
    await eventually(lambda: redis.hlen(keys.thread(request_id_for("toolu_unheard"))), 3)
    await worker.deny("U0CAROL", message, "", name="carol")
    result = await asyncio.wait_for(call, 5)
    assert result.message.endswith(
        "Discussion in Slack: @alice: why build? / @carol: it is the cache / @alice: then fine, but not today"
    )


async def test_on_approve_the_discussion_goes_to_the_audit_log(start_worker, make_approver, slack, redis):
    slack.add_user("U0ALICE", "alice")
    worker = await start_worker()
    approver = await make_approver()
    call = asyncio.create_task(approver.can_use_tool("Bash", {"command": "make deploy"}, context("toolu_noted")))
    message = await posted(slack)
    slack.reply(message.channel, message.ts, "U0ALICE", "ship it, I am watching the dashboards")
    await worker.click("U0ALICE", Action.APPROVE, message)
    result = await asyncio.wait_for(call, 5)
    assert result.behavior == "allow"  # the SDK has no channel for notes on an allow

    async def discussion():
        return [f for _id, f in await redis.xrange(keys.AUDIT) if f[b"event"] == b"discussion"]

    async def discussion_count(redis):
        return len(await discussion())

    await eventually(lambda: discussion_count(redis), 1)
    [entry] = await discussion()
    assert json.loads(entry[b"replies"])[0] | {"ts": ""} == {
        "user": "U0ALICE", "name": "alice", "text": "ship it, I am watching the dashboards", "ts": "",
    }
    assert entry[b"state"] == b"approved"


async def test_end_to_end_the_model_reads_the_discussion(tmp_path, start_worker, make_approver, slack, monkeypatch):
    clean_agent_env(monkeypatch)
    slack.add_user("U0ALICE", "alice")
    worker = await start_worker()
    approver = await make_approver()

    async def discuss_then_deny() -> None:
        message = await posted(slack)
        await worker.event(said(slack, message, "U0ALICE", "please write it under /tmp instead"))
        await worker.deny("U0ALICE", message, "wrong place", name="alice")

    person = asyncio.create_task(discuss_then_deny())
    model = await run_agent(tmp_path, approver, [write_marker(), text("understood")])
    await person

    assert not (tmp_path / "work" / "marker.txt").exists()
    [result] = model.tool_results()
    assert result.is_error
    assert "Reason: wrong place" in result.content
    assert "Discussion in Slack: @alice: please write it under /tmp instead" in result.content
