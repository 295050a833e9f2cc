"""Approver groups reach the scripts as ARGV (``approvals.groups``): no script reads a group
cache, so every key a request script touches stays in its request's slot; and what Python
passes can only refuse, or grant what the cache says, never more."""

from __future__ import annotations

import asyncio
import time

from bot.approvals import groups, keys, record
from bot.approvals.lua import create, decide
from bot.approvals.model import Decision, NewRequest, Refusal, State, Transition, request_id_for
from bot.approvals.policy_rule import Action, EscalationStep, Route
from bot.approvals.record import Field
from bot.approvals.store import RequestStore, TeamGrant
from bot.slack.deciding import Decider
from bot.slack.directory import Directory
from tests.audit_streams import audit_stream
from tests.test_lua_scripts import approve, ask, route_args, routed, run


async def cache(redis, group: str, *members: str) -> None:
    """What ``Directory`` writes for a group it read from Slack."""
    await redis.sadd(keys.usergroup(group), keys.USERGROUP_SENTINEL, *members)


def decide_args(request_id: str, actor: str, memberships: str) -> list[str]:
    """DECIDE's ARGV as ``RequestStore.decide`` writes it for a person's approval of revision 0."""
    now = repr(time.time())
    day = "2026-12-07"
    return [
        request_id,
        "approved",
        actor,
        "",
        "",
        "",
        now,
        "approved",
        "",
        day,
        "1",
        "0",
        "",
        memberships,
        "",
        "",
        "",
    ]


# -- DECIDE ------------------------------------------------------------------------------------


async def test_a_group_member_approves_and_a_non_member_is_refused(store, redis):
    request = await routed(store, approvers=("S1",))
    await cache(redis, "S1", "U1")
    assert (await store.decide(request.id, approve("U2"))).refused is Refusal.NOT_APPROVER
    won = await store.decide(request.id, approve("U1"))
    assert won.won and won.request is not None and won.request.state is State.APPROVED


async def test_a_group_not_cached_is_unknown_even_beside_cached_ones(store, redis):
    request = await routed(store, approvers=("U9", "S1", "S2"))
    await cache(redis, "S2", "U5")
    refused = await store.decide(request.id, approve("U1"))
    assert refused.refused is Refusal.UNKNOWN_GROUPS and refused.groups == ("S1",)
    stored = await store.get(request.id)
    assert stored is not None and stored.state is State.PENDING


async def test_the_script_decides_on_the_memberships_passed_never_on_the_cache(store, redis):
    request = await routed(store, approvers=("S1",))
    await cache(redis, "S1", "U1")  # in Redis, but only what the ARGV says counts
    verdicts = {
        memberships: await run(
            redis, decide.DECIDE, keys.script_keys(request.id), *decide_args(request.id, "U1", memberships)
        )
        for memberships in (
            "{}",  # S1 left out: not cached
            '{"S9":["U1"]}',  # a group that is no approver of this request
            '{"S1":null}',
            '{"S1":"U1"}',
            "not json",
            "",
            '{"S1":[]}',  # cached, without U1
            '{"S1":["U2"]}',  # someone else's membership lends U1 nothing
        )
    }
    assert list(verdicts.values()) == [["unknown_groups", "S1"]] * 6 + [["not_approver"]] * 2
    stored = await store.get(request.id)
    assert stored is not None and stored.state is State.PENDING and stored.votes == ()
    reply = await run(
        redis, decide.DECIDE, keys.script_keys(request.id), *decide_args(request.id, "U1", '{"S1":["U1"]}')
    )
    assert reply == ["won"]


async def test_a_decision_looks_up_the_actor_alone(store, redis):
    request = await routed(store, approvers=("S1", "S2", "U7"))
    await cache(redis, "S1", "U1", "U2", "U3")
    await cache(redis, "S2", "U2")
    assert await groups.for_requests(redis, [request.id], "U2") == {"S1": ["U2"], "S2": ["U2"]}

    looked_up: list[str] = []
    async with redis.monitor() as monitor:

        async def listen() -> None:
            async for command in monitor.listen():
                if command["command"].startswith("SMISMEMBER"):
                    looked_up.append(command["command"])
                if command["command"].startswith("EVALSHA"):
                    return

        listener = asyncio.create_task(listen())
        won = await store.decide(request.id, approve("U2"))
        await asyncio.wait_for(listener, 5)
    assert won.won
    assert sorted(looked_up) == [
        f"SMISMEMBER {keys.usergroup('S1')} U2",
        f"SMISMEMBER {keys.usergroup('S2')} U2",
    ]


async def test_a_stale_read_of_the_approvers_is_refused_as_unknown_never_allowed(store, redis):
    request = await routed(
        store, approvers=("U0ALICE",), escalation=(EscalationStep(after=0, approvers=["S0LEADS"]),)
    )
    await cache(redis, "S0LEADS", "U0LEE")
    # Read before the escalation adds the group: it is not among the approvers yet.
    stale = groups.as_argv(await groups.for_requests(redis, [request.id], "U0LEE"))
    assert stale == "{}"
    await store.mark_posted(request.id, "C1", "1.1")  # starts the escalation's clock
    assert await store.escalate(request.id, 0)
    reply = await run(
        redis, decide.DECIDE, keys.script_keys(request.id), *decide_args(request.id, "U0LEE", stale)
    )
    assert reply == ["unknown_groups", "S0LEADS"]
    # Asked again, the store reads the approvers as they are now.
    assert (await store.decide(request.id, approve("U0LEE"))).won


async def test_a_click_through_a_group_an_escalation_just_added_is_looked_up_and_lands(store, redis, slack):
    slack.usergroups["S0LEADS"] = ["U0LEE"]
    decider = Decider(store, Directory(redis, slack.client()))
    request = await routed(
        store, approvers=("U0ALICE",), escalation=(EscalationStep(after=0, approvers=["S0LEADS"]),)
    )
    refused = await decider.decide(request.id, approve("U0LEE"), origin=None)
    assert refused.refused is Refusal.NOT_APPROVER  # before the escalation
    await store.mark_posted(request.id, "C1", "1.1")
    assert await store.escalate(request.id, 0)

    won = await decider.decide(request.id, approve("U0LEE"), origin=None)
    assert won.won and won.request is not None and won.request.state is State.APPROVED
    assert [c.args["usergroup"] for c in slack.calls_to("usergroups.users.list")] == ["S0LEADS"]


async def test_an_unknown_group_is_asked_about_again_even_when_read_too_recently_to_reread(
    store, redis, slack
):
    # What a click whose read raced an escalation meets: the group is cached and was
    # just re-read, so the refresh reads nothing, yet asking again sees it.
    await cache(redis, "S0LEADS", "U0LEE")
    await redis.set(keys.usergroup_refreshed("S0LEADS"), "1", ex=keys.USERGROUP_REFRESH_GAP)
    decider = Decider(store, Directory(redis, slack.client()))
    unknown = Transition(won=False, request=None, refused=Refusal.UNKNOWN_GROUPS, groups=("S0LEADS",))
    assert await decider._refreshed(unknown, unknown.groups)
    assert slack.calls_to("usergroups.users.list") == []
    not_listed = Transition(won=False, request=None, refused=Refusal.NOT_APPROVER)
    assert not await decider._refreshed(not_listed, ("S0LEADS",))


# -- ROUTE -------------------------------------------------------------------------------------


async def test_a_team_rule_applies_only_through_a_granter_the_cache_lists(store, redis):
    await cache(redis, "S1", "U1")
    route = Route(rule="r", action=Action.ASK, approvers=("S1",))
    outsider = await ask(store, "toolu_out")
    assert await store.route(outsider.id, route, [TeamGrant(rule="Bash(ls)", by="U2")]) is State.PENDING
    member = await ask(store, "toolu_in")
    assert await store.route(member.id, route, [TeamGrant(rule="Bash(ls)", by="U1")]) is State.APPROVED
    uncached = await ask(store, "toolu_unknown")
    other = Route(rule="r", action=Action.ASK, approvers=("S3",))
    assert await store.route(uncached.id, other, [TeamGrant(rule="Bash(ls)", by="U1")]) is State.PENDING
    declined = [f[b"declined"].decode() for _id, f in await audit_stream(redis) if b"declined" in f]
    assert declined == ["Bash(ls) by U2: not_approver", "Bash(ls) by U1: unknown_groups"]


async def test_route_reads_the_memberships_passed_never_the_cache(store, redis):
    await cache(redis, "S1", "U1")
    candidates = '[{"rule": "Bash(ls)", "by": "U1"}]'
    for memberships, state in (("{}", "pending"), ('{"S1":["U1"]}', "approved")):
        request = await ask(store, f"toolu_{state}")
        args = route_args(request.id, approvers="S1", candidates=candidates, groups=memberships)
        assert await run(redis, create.ROUTE, keys.script_keys(request.id), *args) == ["routed", state, ""]


# -- MAY_DECIDE, per shard ---------------------------------------------------------------------


async def test_decidable_by_asks_each_shard_in_its_own_slot(redis_or_cluster):
    redis, store = redis_or_cluster, RequestStore(redis_or_cluster)
    ids = [request_id_for(f"toolu_{n}") for n in range(24)]
    assert len({keys.shard_of(i) for i in ids}) >= 6
    approvers = ["S1", "U1", "S2", "U2"]
    # Written by hand: CREATE still reaches the global jobs and deadlines on a cluster.
    for n, request_id in enumerate(ids):
        new = NewRequest(id=request_id, tool_name="Bash", tool_input={"command": "ls"})
        fields = record.new_fields(new, call="h", now=time.time(), deadline=0)
        await redis.hset(
            keys.request(request_id), mapping={**fields, Field.APPROVERS.value: approvers[n % 4]}
        )
    await cache(redis, "S1", "U1")  # S2 is not cached

    assert await store.decidable_by("U1", ids) == [i for n, i in enumerate(ids) if n % 4 in (0, 1)]
    assert await store.decidable_by("U2", list(reversed(ids))) == [
        i for n, i in reversed(list(enumerate(ids))) if n % 4 == 3
    ]
    unknown = await store.check(ids[2], "U1", approving=True)
    assert unknown.refused is Refusal.UNKNOWN_GROUPS and unknown.groups == ("S2",)
    assert (await store.check(ids[0], "U1", approving=True)).refused is None
    assert (await store.check(ids[0], "U2", approving=True)).refused is Refusal.NOT_APPROVER
    await redis.hset(keys.request(ids[0]), Field.STATE.value, State.DENIED.value)
    assert ids[0] not in await store.decidable_by("U1", ids)


async def test_decidable_by_nothing_asks_nothing(store):
    assert await store.decidable_by("U1", []) == []
    assert await groups.for_requests(store.redis, [], "U1") == {}


async def test_approvers_without_a_group_need_no_cache_read(store, redis):
    request = await routed(store, approvers=("U1",))
    assert await groups.for_requests(redis, [request.id], "U1") == {}
    named = await routed(store, "toolu_named", approvers=("S1", "U1"))
    await cache(redis, "S1", "U2")
    assert await groups.for_requests(redis, [named.id], "U1") == {}  # named: its groups do not matter
    assert await groups.for_requests(redis, [named.id], "U2") == {"S1": ["U2"]}
    assert (await store.decide(named.id, approve("U1"))).won
    assert (await store.decide(request.id, Decision(State.DENIED, actor="U1"))).won
