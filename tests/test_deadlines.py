"""The deadline sweep as domain code: what a due deadline becomes, acted on once. Real Redis, no Slack."""

from __future__ import annotations

import time

import pytest

from bot.approvals import deadlines, keys
from bot.approvals.deadlines import Deadline
from bot.approvals.model import Decision, NewRequest, State
from bot.approvals.policy_rule import Action, EscalationStep, OnTimeout, Route

REQUEST_ID = "d" * 24


@pytest.mark.parametrize(
    ("member", "deadline"),
    [
        ("abc", Deadline("abc")),
        ("abc:esc:0", Deadline("abc", 0)),
        ("abc:esc:12", Deadline("abc", 12)),
        ("abc:esc:", Deadline("abc")),
        ("abc:esc:x", None),
        ("abc:esc:-1", None),
    ],
)
def test_a_deadline_member_is_read_as_a_timeout_or_an_escalation_step(member, deadline):
    assert deadlines.parse(keys.shard_of("abc"), member) == deadline


def test_a_member_in_another_shards_set_is_not_ours():
    # Its request's scripts run in its own shard's slot: acting on it from this set is impossible.
    elsewhere = (keys.shard_of("abc") + 1) % keys.SHARDS
    assert deadlines.parse(elsewhere, "abc") is None
    assert deadlines.parse(elsewhere, "abc:esc:0") is None


async def pending(store, route: Route, *, timeout: float = 0) -> None:
    await store.create(
        NewRequest(id=REQUEST_ID, tool_name="Bash", tool_input={"command": "make"}, timeout=timeout)
    )
    assert await store.route(REQUEST_ID, route) is State.PENDING
    assert await store.mark_posted(REQUEST_ID, "C0APPROVALS", "1.000100") is State.PENDING


DEADLINES = keys.deadlines(keys.shard_of(REQUEST_ID))


async def fall_due(redis, member: str) -> None:
    assert await redis.zscore(DEADLINES, member) is not None
    await redis.zadd(DEADLINES, {member: 0})


async def reminders(redis) -> list[dict[bytes, bytes]]:
    jobs = keys.jobs(keys.shard_of(REQUEST_ID))
    return [f for _id, f in await redis.xrange(jobs) if f[b"kind"] == b"remind"]


async def test_a_due_timeout_expires_the_request(store, redis):
    await pending(store, Route(rule="default", action=Action.ASK, timeout=600))
    await fall_due(redis, REQUEST_ID)
    await deadlines.act_on_due(store, time.time())
    request = await store.get(REQUEST_ID)
    assert request.state is State.EXPIRED and request.reason == "timeout"
    assert await redis.zscore(DEADLINES, REQUEST_ID) is None


async def test_a_deadline_not_yet_due_is_left_alone(store, redis):
    await pending(store, Route(rule="default", action=Action.ASK, timeout=600))
    await deadlines.act_on_due(store, time.time())
    assert (await store.get(REQUEST_ID)).state is State.PENDING


async def test_a_due_escalation_step_adds_its_approvers_and_queues_a_reminder(store, redis):
    step = EscalationStep(after=300, approvers=["U0CAROL"])
    await pending(store, Route(rule="ops", action=Action.ASK, approvers=("U0ALICE",), escalation=(step,)))
    await fall_due(redis, keys.escalation_member(REQUEST_ID, 0))
    await deadlines.act_on_due(store, time.time())
    await deadlines.act_on_due(store, time.time())  # a second sweep (another worker): nothing twice
    request = await store.get(REQUEST_ID)
    assert request.state is State.PENDING and request.escalated == (0,)
    assert request.approvers == ("U0ALICE", "U0CAROL")
    assert [(r[b"id"], r[b"steps"]) for r in await reminders(redis)] == [(REQUEST_ID.encode(), b"0")]


async def test_a_timeout_on_escalate_fires_the_steps_left_then_expires(store, redis):
    steps = (EscalationStep(after=300, approvers=["U0CAROL"]),)
    route = Route(rule="ops", action=Action.ASK, timeout=600, on_timeout=OnTimeout.ESCALATE, escalation=steps)
    await pending(store, route)
    await fall_due(redis, REQUEST_ID)
    await deadlines.act_on_due(store, time.time())
    request = await store.get(REQUEST_ID)
    assert request.state is State.PENDING and request.timeout_escalated
    assert "U0CAROL" in request.approvers and len(await reminders(redis)) == 1
    await fall_due(redis, REQUEST_ID)  # the one more timeout it waited
    await deadlines.act_on_due(store, time.time())
    assert (await store.get(REQUEST_ID)).state is State.EXPIRED


async def test_a_deadline_of_a_request_that_ended_is_dropped(store, redis):
    await pending(store, Route(rule="default", action=Action.ASK, timeout=600))
    assert (await store.decide(REQUEST_ID, Decision(State.DENIED, reason="the run ended"))).won
    await redis.zadd(DEADLINES, {REQUEST_ID: 0})  # left by a sweep that raced the decision
    await deadlines.act_on_due(store, time.time())
    assert (await store.get(REQUEST_ID)).state is State.DENIED
    assert await redis.zscore(DEADLINES, REQUEST_ID) is None


async def test_a_member_this_bot_did_not_write_is_dropped_and_the_rest_still_acted_on(store, redis):
    await pending(store, Route(rule="default", action=Action.ASK, timeout=600))
    await redis.zadd(DEADLINES, {"someone:esc:else": 0})
    await fall_due(redis, REQUEST_ID)
    await deadlines.act_on_due(store, time.time())
    assert await redis.zscore(DEADLINES, "someone:esc:else") is None
    assert (await store.get(REQUEST_ID)).state is State.EXPIRED
