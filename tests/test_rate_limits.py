"""Slack's rate limits: the workers' shared budget, the fake that enforces them, and what a decision costs."""

from __future__ import annotations

import asyncio
import collections
import re

import aiohttp
import pytest
from redis.asyncio import Redis

from bot.approvals import keys
from bot.approvals.queue import queued
from bot.settings import Settings
from bot.slack.budget import Priority, SlackBudget, priority
from bot.slack.budgeted_client import BudgetedClient
from bot.slack.ids import Action
from bot.slack.rates import rate_for
from tests.conftest import cancelled, context, policy_file, posted
from tests.fakes.bot_settings import CHANNEL
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_event_payloads import event_callback, message_event
from tests.fakes.slack_rules import DEFAULT_RATE_SCALE

SECOND = "C0SECOND"
WRITES = ("chat.postMessage", "chat.update", "chat.postEphemeral", "chat.delete")


def _shown(message) -> str:
    parts = [message.text]
    for block in message.blocks:
        if isinstance(block.get("text"), dict):
            parts.append(block["text"]["text"])
        parts += [e.get("text", "") for e in block.get("elements", []) if isinstance(e.get("text"), str)]
    return "\n".join(parts)


def _buttons(message) -> list[str]:
    return [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


async def _jobs_drained(redis: Redis, timeout: float = 10) -> None:
    """Every job (the decision's update and what follows it) was done and acknowledged."""
    loop = asyncio.get_running_loop()
    until = loop.time() + timeout
    while left := await queued(redis):
        if loop.time() > until:
            raise AssertionError(f"{left} jobs still queued after {timeout}s")
        await asyncio.sleep(0.02)


# -- the budget's script ------------------------------------------------------


async def test_a_bucket_gives_its_burst_then_asks_to_wait_and_refills(redis):
    budget = SlackBudget(redis, scale=1.0)
    burst = rate_for("chat.update").with_headroom().burst
    assert [await budget.take("chat.update") for _ in range(burst)] == [0.0] * burst
    wait = await budget.take("chat.update")
    assert 0 < wait <= 60 / rate_for("chat.update").per_minute  # one token's refill at most
    assert await budget.take("users.info") == 0.0  # another method, another bucket


async def test_posts_are_counted_per_channel_and_for_the_workspace(redis):
    budget = SlackBudget(redis, scale=1.0)
    assert await budget.take("chat.postMessage", CHANNEL, Priority.POST) == 0.0
    assert await budget.take("chat.postMessage", CHANNEL, Priority.POST) > 0  # about 1 a second per channel
    assert await budget.take("chat.postMessage", SECOND, Priority.POST) == 0.0
    workspace = await redis.hget(keys.rate_bucket("chat.postMessage:workspace"), "tokens")
    burst = rate_for("chat.postMessage:workspace").with_headroom().burst
    assert burst - 2 <= float(workspace) < burst - 1  # two taken (and a sliver refilled since)


async def test_lower_priorities_leave_a_reserve_for_higher_ones(redis):
    budget = SlackBudget(redis, scale=1.0)
    burst = rate_for("chat.update").with_headroom().burst  # 4
    taken = 0
    while await budget.take("chat.update", level=Priority.AUDIT) == 0.0:
        taken += 1
    assert taken < burst  # the audit stopped while tokens were left
    assert await budget.take("chat.update", level=Priority.PERSON) == 0.0  # for a person waiting
    # A forced call (the interactive path) always goes, and later callers wait for what it spent.
    while await budget.take("chat.update", level=Priority.PERSON) == 0.0:
        pass
    assert await budget.take("chat.update", force=True) == 0.0
    assert float(await redis.hget(keys.rate_bucket("chat.update"), "tokens")) < 0


async def test_a_429_pauses_the_method_for_everyone(redis):
    budget = SlackBudget(redis, scale=1.0)
    await budget.pause("chat.postMessage", CHANNEL, 7)
    wait = await budget.take("chat.postMessage", CHANNEL, Priority.PERSON)
    assert 6 < wait <= 7
    assert await budget.take("chat.postMessage", SECOND, Priority.PERSON) == 0.0  # only that channel


# -- the fake -------------------------------------------------------------------


async def test_the_fake_refuses_past_the_rate_as_slack_does():
    async with FakeSlack.start(rate_scale=1.0) as slack, aiohttp.ClientSession() as session:
        statuses, headers, bodies = [], [], []
        for _ in range(rate_for("conversations.history").burst + 1):
            async with session.post(
                f"{slack.base_url}conversations.history",
                headers={"Authorization": f"Bearer {slack.token}"},
                data={"channel": CHANNEL},
            ) as response:
                statuses.append(response.status)
                headers.append(response.headers.get("Retry-After"))
                bodies.append(await response.json())
    assert statuses[:-1] == [200] * rate_for("conversations.history").burst
    assert statuses[-1] == 429 and bodies[-1] == {"ok": False, "error": "ratelimited"}
    assert re.fullmatch(r"[1-9][0-9]*", headers[-1])  # whole seconds, never 0
    assert len(slack.rate_limited()) == 1


async def test_a_background_client_waits_for_the_budget_instead_of_drawing_429s(redis):
    async with FakeSlack.start(rate_scale=20.0) as slack:
        client = BudgetedClient(
            token=slack.token, base_url=slack.base_url, budget=SlackBudget(redis, scale=20.0)
        )
        client.proxy = None
        with priority(Priority.POST):
            await asyncio.gather(
                *(client.chat_postMessage(channel=CHANNEL, text=f"post {i}") for i in range(12))
            )
        assert len(slack.roots()) == 12
        assert slack.rate_limited() == []


async def test_a_429_that_comes_anyway_is_waited_out_and_retried(redis, slack):
    client = BudgetedClient(token=slack.token, base_url=slack.base_url, budget=SlackBudget(redis, scale=20.0))
    client.proxy = None
    slack.rate_limit("chat.update", retry_after=1)
    posted_ = await client.chat_postMessage(channel=CHANNEL, text="hi")
    await client.chat_update(channel=CHANNEL, ts=posted_["ts"], text="edited")
    assert [c.status for c in slack.calls_to("chat.update")] == [429, 200]
    assert slack.message(CHANNEL, posted_["ts"]).text == "edited"


def test_the_rate_scale_setting_must_be_positive_and_finite():
    for bad in ("0", "-1", "inf", "nan"):
        with pytest.raises(ValueError):
            Settings(_env_file=None, slack_rate_scale=bad)
    assert Settings(_env_file=None, slack_rate_scale="20").slack_rate_scale == 20.0
    assert Settings(_env_file=None).slack_rate_scale == 1.0  # the default: Slack's own rates


# -- what a decision costs --------------------------------------------------------


def _calls_since(slack: FakeSlack, start: int) -> collections.Counter[str]:
    return collections.Counter(c.method for c in slack.calls[start:])


async def test_a_single_approver_decision_costs_one_write_when_nobody_talked(
    start_worker, make_approver, slack, redis
):
    worker = await start_worker()
    approver = await make_approver()
    call = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "make deploy"}, context("toolu_cost"))
    )
    message = await posted(slack)
    await _jobs_drained(redis)
    start = len(slack.calls)
    await worker.click("U_ALICE", Action.APPROVE, message, name="alice")
    assert (await asyncio.wait_for(call, 5)).behavior == "allow"
    await slack.wait_for(lambda: "Approved by <@U_ALICE>" in _shown(message))
    await _jobs_drained(redis)
    spent = _calls_since(slack, start)
    # The card shows the outcome; nobody wrote in the thread, so it is neither read nor written to.
    assert {m: n for m, n in spent.items() if m != "auth.test"} == {"chat.update": 1}
    assert slack.thread(message.channel, message.ts) == []


async def test_a_discussed_decision_reads_the_thread_once_and_answers_there(
    start_worker, make_approver, slack, redis
):
    slack.add_user("U0ALICE", "alice")
    worker = await start_worker()
    approver = await make_approver()
    call = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "make deploy"}, context("toolu_talk"))
    )
    message = await posted(slack)
    reply = slack.reply(message.channel, message.ts, "U0ALICE", "go ahead")
    await worker.event(
        event_callback(message_event(message.channel, reply.ts, "U0ALICE", "go ahead", thread_ts=message.ts))
    )
    await _jobs_drained(redis)
    start = len(slack.calls)
    await worker.click("U0ALICE", Action.APPROVE, message, name="alice")
    assert (await asyncio.wait_for(call, 5)).behavior == "allow"
    await slack.wait_for(lambda: any(m.by_bot for m in slack.thread(message.channel, message.ts)))
    await _jobs_drained(redis)
    spent = _calls_since(slack, start)
    assert (
        spent["chat.update"] == 1 and spent["conversations.replies"] == 1 and spent["chat.postMessage"] == 1
    )


async def test_a_vote_that_lands_before_the_post_is_recorded_shows_on_the_message(
    tmp_path, start_worker, make_approver, slack
):
    """The post reached Slack and somebody voted before the worker recorded it: the card catches up."""
    worker = await start_worker(approval_policy=policy_file(tmp_path, "default:\n  required_approvals: 2\n"))
    approver = await make_approver()
    voted = asyncio.Event()

    async def vote_first(call) -> None:
        shown = slack.message(call.response["channel"], call.response["ts"])
        await worker.click("U_ALICE", Action.APPROVE, shown, name="alice")
        voted.set()

    slack.before_answer("chat.postMessage", vote_first)
    call = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "make deploy"}, context("toolu_early"))
    )
    try:
        message = await posted(slack)
        await asyncio.wait_for(voted.wait(), 5)
        await slack.wait_for(lambda: "1 of 2" in _shown(message), timeout=5)
        assert _buttons(message)  # still pending, still decidable
    finally:
        await cancelled(call)


async def test_a_worker_that_died_updating_a_message_does_not_leave_it_behind(
    start_worker, make_approver, slack, redis
):
    """The render lock of a worker that died mid-update lapses; the next update waits it out
    instead of leaving the card with live buttons after its request was decided."""
    worker = await start_worker()
    approver = await make_approver()
    call = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "make deploy"}, context("toolu_dead_lock"))
    )
    message = await posted(slack)
    await _jobs_drained(redis)
    # As a worker that took the lock and died would leave it (it lapses after its TTL; 1 s here).
    request_id = message.metadata["event_payload"]["request_id"]
    await redis.set(keys.render_lock(request_id), "dead-worker", ex=1)
    await worker.click("U_ALICE", Action.APPROVE, message, name="alice")
    assert (await asyncio.wait_for(call, 5)).behavior == "allow"
    await slack.wait_for(lambda: "Approved by <@U_ALICE>" in _shown(message), timeout=10)
    assert _buttons(message) == []


# -- the burst, at test scale -------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("requests", [60])
async def test_a_burst_into_two_channels_is_posted_decided_and_shown_with_few_429s(
    requests, start_worker, make_approver, slack, redis
):
    slack.add_channel(SECOND, "second")
    workers = [await start_worker() for _ in range(3)]
    agents = [
        await make_approver(agent_name="agent-a"),
        await make_approver(agent_name="agent-b", channel=SECOND),
    ]
    calls = [
        asyncio.create_task(
            agents[i % 2].can_use_tool("Bash", {"command": f"echo {i}"}, context(f"toolu_burst_{i}"))
        )
        for i in range(requests)
    ]
    clicks = []
    try:
        for n in range(1, requests + 1):
            message = await posted(slack, n)  # clicks land while later posts are still queued
            clicks.append(
                asyncio.create_task(workers[n % 3].click("U_ALICE", Action.APPROVE, message, name="alice"))
            )
        await asyncio.gather(*clicks)
        results = await asyncio.wait_for(asyncio.gather(*calls), 30)
    finally:
        await cancelled(*calls)
    assert [r.behavior for r in results] == ["allow"] * requests  # none undeliverable, none lost
    roots = slack.roots()
    assert len(roots) == requests
    assert {m.channel for m in roots} == {CHANNEL, SECOND}
    await slack.wait_for(
        lambda: all("Approved by <@U_ALICE>" in _shown(m) and not _buttons(m) for m in roots), timeout=30
    )
    await _jobs_drained(redis, timeout=30)
    writes = sum(1 for c in slack.calls if c.method in WRITES and c.ok) - requests
    print(
        f"\n429s: {len(slack.rate_limited())}; writes per decision: {writes / requests:.2f}; "
        f"calls: {collections.Counter(c.method for c in slack.calls)}"
    )
    assert writes / requests <= 1.5
    assert len(slack.rate_limited()) <= 3


# -- Slack's errors, readable -------------------------------------------------------


async def test_what_slack_says_about_a_refused_message_is_logged(start_worker, make_approver, slack, caplog):
    said = "[ERROR] must be less than 3001 characters [json-pointer:/blocks/1/text/text]"
    slack.fail("chat.postMessage", "invalid_blocks", response_metadata={"messages": [said]})
    await start_worker()
    approver = await make_approver()
    result = await asyncio.wait_for(
        approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_refused")), 10
    )
    assert result.behavior == "deny" and "invalid_blocks" in result.message
    assert any("invalid_blocks" in r.getMessage() and said in r.getMessage() for r in caplog.records)


# -- priorities and waiting ------------------------------------------------------------


@pytest.mark.unlimited_slack
async def test_a_test_can_ask_for_slack_without_limits(slack, start_worker):
    assert slack.rate_scale is None
    client = slack.client()
    answers = await asyncio.gather(
        *(client.chat_postMessage(channel=CHANNEL, text=f"{i}") for i in range(20))
    )
    assert all(a["ok"] for a in answers) and slack.rate_limited() == []


async def test_the_update_of_a_clicked_message_goes_before_a_backlog_of_posts(
    start_worker, make_approver, slack
):
    worker = await start_worker()
    approver = await make_approver()
    backlog = 40
    calls = [
        asyncio.create_task(
            approver.can_use_tool("Bash", {"command": f"echo {i}"}, context(f"toolu_backlog_{i}"))
        )
        for i in range(backlog)
    ]
    try:
        first = await posted(slack)
        await worker.click("U_ALICE", Action.APPROVE, first, name="alice")
        await slack.wait_for(lambda: "Approved by <@U_ALICE>" in _shown(first), timeout=10)
        # Posts go about 1 a second per channel (here 20): the clicked message did not wait for them.
        assert len(slack.roots()) <= backlog - 10
        await slack.wait_for(lambda: len(slack.roots()) == backlog, timeout=20)
    finally:
        await cancelled(*calls)


@pytest.mark.slow
async def test_a_job_waiting_for_the_budget_is_not_taken_over_by_another_worker(
    start_worker, make_approver, slack, redis
):
    # As after a 429: nobody posts in the channel for a while, longer than a job may look abandoned.
    await SlackBudget(redis, scale=DEFAULT_RATE_SCALE).pause("chat.postMessage", CHANNEL, 3)
    await start_worker(job_retry_after=1)
    await start_worker(job_retry_after=1)
    approver = await make_approver()
    call = asyncio.create_task(approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_waits")))
    try:
        await posted(slack)
        await _jobs_drained(redis)
    finally:
        await cancelled(call)
    assert len(slack.calls_to("chat.postMessage")) == 1  # one worker posted it, once
    assert slack.calls_to("chat.delete") == [] and slack.calls_to("conversations.history") == []


async def test_calls_a_click_makes_are_counted_in_the_budget(start_worker, make_approver, slack, redis):
    worker = await start_worker()
    approver = await make_approver()
    call = asyncio.create_task(approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_counted")))
    try:
        message = await posted(slack)
        await worker.click("U_ALICE", Action.DENY, message)  # opens the reason modal at once
        loop = asyncio.get_running_loop()
        until = loop.time() + 5
        while await redis.hget(keys.rate_bucket("views.open"), "tokens") is None:
            assert loop.time() < until, "the modal's views.open was never counted"
            await asyncio.sleep(0.02)
    finally:
        await cancelled(call)


async def test_pending_updates_of_one_message_cost_one_call_of_its_latest_state(
    start_worker, make_approver, slack, redis
):
    from bot.approvals.model import request_id_for

    await start_worker()
    approver = await make_approver()
    call = asyncio.create_task(approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_coalesce")))
    try:
        message = await posted(slack)
        await _jobs_drained(redis)
        for _ in range(5):  # five changes' updates, queued while the message already shows the latest state
            request_id = request_id_for("toolu_coalesce")
            await redis.xadd(keys.jobs(keys.shard_of(request_id)), {"kind": "update", "id": request_id})
        await _jobs_drained(redis)
        assert slack.calls_to("chat.update") == [] and message.edits == 0
    finally:
        await cancelled(call)
    await slack.wait_for(lambda: "Cancelled" in _shown(message))
    await _jobs_drained(redis)
    assert len(slack.calls_to("chat.update")) == 1


async def test_a_click_never_waits_out_a_429(start_worker, make_approver, slack, redis):
    worker = await start_worker()
    approver = await make_approver()
    call = asyncio.create_task(approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_no_wait")))
    try:
        message = await posted(slack)
        slack.rate_limit("views.open", retry_after=30)  # waiting it out would lose the 3-second trigger
        response = await asyncio.wait_for(worker.post_signed(_deny_click(message)), 10)
        assert response.status < 500
        assert [c.status for c in slack.calls_to("views.open")] == [429]  # tried once, not retried
        loop = asyncio.get_running_loop()
        until = loop.time() + 5
        while await redis.hget(keys.rate_bucket("views.open"), "paused") is None:
            assert loop.time() < until, "the 429 did not pause views.open for the workers"
            await asyncio.sleep(0.02)
    finally:
        await cancelled(call)


def _deny_click(message) -> dict:
    from tests.fakes.slack_block_actions import block_actions
    from tests.fakes.worker import _button_value

    value = _button_value(message, Action.DENY)
    return block_actions(
        "U_ALICE", Action.DENY.value, value, message=message.as_dict(), channel=message.channel
    )


async def test_a_vote_cast_while_the_message_is_being_updated_shows_too(
    tmp_path, start_worker, make_approver, slack
):
    """One worker updates a message at a time: a change whose update found it busy is caught up by that worker."""
    policy = policy_file(tmp_path, "default:\n  required_approvals: 3\n")
    workers = [await start_worker(approval_policy=policy), await start_worker(approval_policy=policy)]
    approver = await make_approver()
    call = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "make deploy"}, context("toolu_during"))
    )
    try:
        message = await posted(slack)

        async def second_vote(_call) -> None:  # lands while the first vote's update is in flight
            await workers[1].click("U_BOB", Action.APPROVE, message, name="bob")

        slack.before_answer("chat.update", second_vote)
        await workers[0].click("U_ALICE", Action.APPROVE, message, name="alice")
        await slack.wait_for(lambda: "2 of 3" in _shown(message), timeout=5)
        assert _buttons(message)
    finally:
        await cancelled(call)
