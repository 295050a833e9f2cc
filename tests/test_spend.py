"""Spend reservations (``approvals.spend``): a route's daily counter is never below what was approved.

The counter lives in its own slot, so ROUTE and DECIDE approve with a reservation made
before them and settled after. These tests try what could break that: crashes between
the steps, races between routes and clicks, votes, a request routed mid-click.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from redis.crc import key_slot

from bot.approvals import keys
from bot.approvals.lua.runner import ScriptRunner
from bot.approvals.model import ApprovalRequest, Decision, NewRequest, Refusal, State, request_id_for
from bot.approvals.policy_rule import Action, Route
from bot.approvals.record import Field
from bot.approvals.spend import Reservation, SpendLedger, Verdict
from bot.approvals.store import RequestStore, TeamGrant, utc_day
from bot.redis_client import RedisClient

DAY = "2026-12-07"


def counter(rule: str = "gpu", day: str = DAY) -> str:
    return keys.spend(rule, day)


async def amount(redis: RedisClient, key: str) -> float:
    value = await redis.get(key)
    return float(value) if value is not None else 0.0


async def held(redis: RedisClient, key: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in (await redis.hgetall(keys.spend_held(key))).items()}


async def ask(store: RequestStore, n: int = 1, **fields: Any) -> ApprovalRequest:
    tool_use_id = f"toolu_{n}"
    new = NewRequest(
        id=request_id_for(tool_use_id),
        tool_name="Bash",
        tool_input={"command": f"gpu train {n}"},
        tool_use_id=tool_use_id,
        **fields,
    )
    request, _ = await store.create(new)
    return request


def today(store: RequestStore) -> str:
    return store.today(time.time())


def approve(actor: str = "U1", revision: int = 0) -> Decision:
    return Decision(State.APPROVED, actor=actor, revision=revision)


GRANT = [TeamGrant(rule="Bash(gpu *)", by="U0CAROL")]


def team_route(cost: float = 10, budget: float | None = 30, **more: Any) -> Route:
    return Route(rule="gpu", action=Action.ASK, cost=cost, daily_budget=budget, **more)


# -- the ledger's scripts, on standalone and on the 1-node cluster (each in its counter's slot) ---


@pytest.fixture
def ledger(redis_or_cluster: RedisClient) -> SpendLedger:
    return SpendLedger(ScriptRunner(redis_or_cluster))


async def test_reserve_holds_once_per_token_and_within_the_budget(ledger, redis_or_cluster):
    first = await ledger.reserve(counter(), request_id="r1", cost="20", budget="30", now=1.0)
    assert first.verdict is Verdict.HELD and first.token
    assert await amount(redis_or_cluster, counter()) == 20
    assert (await held(redis_or_cluster, counter()))[first.token] == "20 r1 1.0"
    over = await ledger.reserve(counter(), request_id="r2", cost="20", budget="30", now=2.0)
    assert over.verdict is Verdict.OVER and not over.held and over.token == ""
    unchecked = await ledger.reserve(counter(), request_id="r3", cost="20", budget="", now=3.0)
    assert unchecked.held  # no budget: counted, never refused (people approving)
    assert await amount(redis_or_cluster, counter()) == 40
    assert await redis_or_cluster.ttl(counter()) > 7 * 86400
    assert await redis_or_cluster.ttl(keys.spend_held(counter())) > 7 * 86400


async def test_reserve_repeated_with_the_same_token_holds_once(ledger, redis_or_cluster):
    # A retried call (its reply lost on the way back) must not count twice.
    from bot.approvals.lua.spend import RESERVE

    script = redis_or_cluster.register_script(RESERVE)
    args = ["tok", "r1", "5", "", "1"]
    for _ in range(3):
        assert await script(keys=[counter(), keys.spend_held(counter())], args=args) == [b"held"]
    assert await amount(redis_or_cluster, counter()) == 5


@pytest.mark.parametrize(
    ("cost", "budget", "stored", "what"),
    [
        ("inf", "", None, "cost"),
        ("-1", "", None, "cost"),
        ("1", "nan", None, "budget"),
        ("1", "", "inf", "spend"),
    ],
)
async def test_reserve_invalid_holds_nothing(ledger, redis_or_cluster, cost, budget, stored, what):
    if stored is not None:
        await redis_or_cluster.set(counter(), stored)
    reservation = await ledger.reserve(counter(), request_id="r1", cost=cost, budget=budget, now=1.0)
    assert (reservation.verdict, reservation.problem) == (Verdict.INVALID, what)
    assert await held(redis_or_cluster, counter()) == {}


async def test_release_gives_back_once_and_never_after_commit(ledger, redis_or_cluster):
    kept = await ledger.reserve(counter(), request_id="r1", cost="7.5", budget="", now=1.0)
    given_back = await ledger.reserve(counter(), request_id="r2", cost="2.5", budget="", now=1.0)
    await ledger.commit(kept)
    await ledger.release(kept)  # after commit: the approval stays counted
    await ledger.release(given_back)
    await ledger.release(given_back)  # repeated: given back once
    await ledger.commit(given_back)  # after release: nothing to settle
    assert await amount(redis_or_cluster, counter()) == 7.5
    assert await held(redis_or_cluster, counter()) == {}


async def test_settling_nothing_or_a_refused_reservation_changes_nothing(ledger, redis_or_cluster):
    await ledger.reserve(counter(), request_id="r1", cost="30", budget="30", now=1.0)
    over = await ledger.reserve(counter(), request_id="r2", cost="1", budget="30", now=1.0)
    for reservation in (Reservation(), over):
        await ledger.release(reservation)
        await ledger.commit(reservation)
    assert await amount(redis_or_cluster, counter()) == 30


@pytest.mark.parametrize("rule", ["gpu", "a}b", "{x}", "with spaces:and:colons"])
def test_a_counter_and_its_reservations_share_a_slot(rule):
    key = keys.spend(rule, DAY)
    assert key == keys.spend_counter(keys.spend(rule), DAY)
    assert key_slot(key.encode()) == key_slot(keys.spend_held(key).encode())


# -- ROUTE: policy allow and team rules ---------------------------------------------------------


async def test_a_policy_allow_counts_its_cost_without_a_budget_check(store, redis):
    await redis.set(counter(day=today(store)), "1000")
    request = await ask(store)
    allow = Route(rule="gpu", action=Action.ALLOW, cost=10, daily_budget=30)
    assert await store.route(request.id, allow) is State.APPROVED
    assert await amount(redis, counter(day=today(store))) == 1010
    assert await held(redis, counter(day=today(store))) == {}  # committed
    stored = await redis.hmget(keys.request(request.id), [Field.SPEND_TOKEN, Field.SPEND_COUNTER])
    assert stored[0] and stored[1].decode() == counter(day=today(store))


async def test_an_allow_whose_cost_cannot_be_held_is_denied(store, redis):
    await redis.set(counter(day=today(store)), "inf")
    request = await ask(store)
    assert await store.route(request.id, Route(rule="gpu", action=Action.ALLOW, cost=10)) is State.DENIED
    stored = await store.get(request.id)
    assert stored is not None and stored.reason == "the stored cost cannot be added to the budget (spend)"


async def test_route_approves_with_a_cost_only_holding_its_reservation(store, redis):
    # ROUTE called without a held token (a caller that skipped RESERVE, or a refused one): fail closed.
    from bot.approvals.lua.create import ROUTE

    script = redis.register_script(ROUTE)
    for n, (token, verdict) in enumerate([("", ""), ("", "held"), ("tok", "over"), ("tok", "invalid")]):
        request = await ask(store, n)
        args = [
            request.id, repr(time.time()), "gpu", "", "", "", "1", "", "0", "deny", "[]", "10", "",
            keys.spend("gpu"), "", "allow", "", today(store), "[]", "", token, verdict,
        ]  # fmt: skip
        assert await script(keys=keys.script_keys(request.id), args=args) == [b"routed", b"denied", b""]
        assert await redis.hget(keys.request(request.id), Field.SPEND_TOKEN) is None


async def test_routing_twice_counts_once(store, redis):
    request = await ask(store)
    allow = Route(rule="gpu", action=Action.ALLOW, cost=10)
    assert await store.route(request.id, allow) is State.APPROVED
    assert await store.route(request.id, allow) is State.APPROVED  # 'already': its reservation released
    assert await amount(redis, counter(day=today(store))) == 10
    assert await held(redis, counter(day=today(store))) == {}


async def test_a_team_rule_over_the_budget_leaves_nothing_held(store, redis):
    first, second = await ask(store, 1), await ask(store, 2)
    assert await store.route(first.id, team_route(cost=20), GRANT) is State.APPROVED
    assert await store.route(second.id, team_route(cost=20), GRANT) is State.PENDING  # 40 > 30: people decide
    assert await amount(redis, counter(day=today(store))) == 20
    assert await held(redis, counter(day=today(store))) == {}


async def test_a_team_rule_the_granter_may_not_use_releases_its_reservation(store, redis):
    request = await ask(store)
    route = team_route(approvers=("U0SRE",))  # Carol is no approver here: asked
    assert await store.route(request.id, route, GRANT) is State.PENDING
    assert await amount(redis, counter(day=today(store))) == 0
    assert await held(redis, counter(day=today(store))) == {}


async def test_concurrent_team_routes_never_approve_past_the_budget(store, redis):
    requests = [await ask(store, n) for n in range(20)]
    states = await asyncio.wait_for(
        asyncio.gather(*(store.route(r.id, team_route(cost=10, budget=35), GRANT) for r in requests)), 10
    )
    assert states.count(State.APPROVED) == 3 and states.count(State.PENDING) == 17
    assert await amount(redis, counter(day=today(store))) == 30
    assert await held(redis, counter(day=today(store))) == {}
    assert await store.spent("gpu", time.time()) == 30


async def test_a_crash_after_reserve_leaves_less_budget_never_more(store, redis):
    # A worker reserved for a route and died before ROUTE: the amount stays held.
    day = today(store)
    await store.spend.reserve(counter(day=day), request_id="lost", cost="25", budget="30", now=time.time())
    request = await ask(store)
    assert await store.route(request.id, team_route(cost=10), GRANT) is State.PENDING  # 25 + 10 > 30
    assert await store.spent("gpu", time.time()) == 25  # what messages show: held amounts included


# -- DECIDE: people approving ----------------------------------------------------------------


async def routed(store: RequestStore, n: int = 1, **route: Any) -> ApprovalRequest:
    request = await ask(store, n)
    await store.route(request.id, Route(rule="gpu", action=Action.ASK, **route))
    return request


async def test_a_person_approval_is_counted_never_refused_by_the_budget(store, redis):
    request = await routed(store, cost=40, daily_budget=30)
    won = await store.decide(request.id, approve())
    assert won.won and won.request is not None and won.request.state is State.APPROVED
    assert await amount(redis, counter(day=today(store))) == 40
    assert await held(redis, counter(day=today(store))) == {}


async def test_n_of_m_votes_release_their_reservation_until_the_last(store, redis):
    request = await routed(store, cost=5, required=2)
    vote = await store.decide(request.id, approve("U1"))
    assert vote.votes == (1, 2)
    assert await amount(redis, counter(day=today(store))) == 0
    assert await held(redis, counter(day=today(store))) == {}
    assert (await store.decide(request.id, approve("U1"))).refused is Refusal.VOTED
    assert (await store.decide(request.id, approve("U2"))).won
    assert await amount(redis, counter(day=today(store))) == 5
    assert await held(redis, counter(day=today(store))) == {}


async def test_racing_approvals_count_the_cost_once(store, redis):
    request = await routed(store, cost=12)
    results = await asyncio.wait_for(
        asyncio.gather(*(store.decide(request.id, approve(f"U{n}")) for n in range(10))), 10
    )
    assert sum(t.won for t in results) == 1
    assert await amount(redis, counter(day=today(store))) == 12
    assert await held(redis, counter(day=today(store))) == {}


async def test_a_denial_holds_nothing(store, redis):
    request = await routed(store, cost=12)
    assert (await store.decide(request.id, Decision(State.DENIED, actor="U1"))).won
    assert await redis.exists(counter(day=today(store)), keys.spend_held(counter(day=today(store)))) == 0


async def test_decide_without_the_requests_own_reservation_retries_and_writes_nothing(store, redis):
    from bot.approvals.lua.decide import DECIDE

    request = await routed(store, cost=3)
    day = today(store)
    mine = await store.spend.reserve(counter(day=day), request_id=request.id, cost="3", budget="", now=1.0)
    script = redis.register_script(DECIDE)
    req, _deadlines, jobs, chain, *_ = keys.script_keys(request.id)
    before = (await redis.hgetall(req), await redis.xlen(chain), await redis.xlen(jobs))
    base = [
        request.id,
        "approved",
        "U1",
        "",
        "",
        "",
        repr(time.time()),
        "approved",
        "",
        day,
        "1",
        "0",
        "",
        "",
    ]
    for spend in (
        ["", "", ""],  # no reservation where the request costs
        [mine.token, counter(day=day), "4"],  # another cost
        [mine.token, counter("other", day), "3"],  # another route's counter
        [mine.token, counter(day="2026-01-01"), "3"],  # another day's counter
    ):
        assert await script(keys=keys.script_keys(request.id), args=[*base, *spend]) == [b"retry"]
    after = (await redis.hgetall(req), await redis.xlen(chain), await redis.xlen(jobs))
    assert after == before and await redis.exists(keys.votes(request.id)) == 0


async def test_a_route_landing_between_the_read_and_decide_is_read_again(store, redis, monkeypatch):
    # The click reads the request before its route (and cost) is stored; ROUTE lands; DECIDE refuses
    # the stale reservation ('retry') and the click is decided on the request as it is now.
    request = await ask(store, cost=8.0)
    real = store._reserve_decision
    routed_once = False

    async def route_lands(*args: Any) -> Reservation:
        nonlocal routed_once
        reservation = await real(*args)
        if not routed_once:
            routed_once = True
            await store.route(request.id, Route(rule="gpu", action=Action.ASK, cost=8, daily_budget=5))
        return reservation

    monkeypatch.setattr(store, "_reserve_decision", route_lands)
    won = await store.decide(request.id, approve())
    assert won.won
    assert await amount(redis, counter(day=today(store))) == 8  # counted (a person: past the budget)
    assert await held(redis, counter(day=today(store))) == {}


async def test_a_request_changing_twice_while_deciding_is_refused_never_approved(store, redis, monkeypatch):
    request = await routed(store, cost=8)
    real = store.spend.reserve
    bumps = 0

    async def cost_changes(*args: Any, **kwargs: Any) -> Reservation:
        nonlocal bumps
        reservation = await real(*args, **kwargs)
        bumps += 1
        await redis.hset(keys.request(request.id), Field.COST, str(8 + bumps))
        return reservation

    monkeypatch.setattr(store.spend, "reserve", cost_changes)
    refused = await store.decide(request.id, approve())
    assert refused.refused is Refusal.CHANGED and not refused.won
    assert refused.request is not None and refused.request.state is State.PENDING
    assert bumps == 2  # read again once, then refused
    assert await amount(redis, counter(day=today(store))) == 0  # both reservations given back
    assert await held(redis, counter(day=today(store))) == {}


async def test_decide_failing_after_reserve_keeps_the_reservation(store, redis, monkeypatch):
    # A crash between RESERVE and DECIDE's reply: less budget, never more.
    request = await routed(store, cost=6)

    async def connection_lost(*_args: Any) -> list[bytes]:
        raise ConnectionError("lost")

    monkeypatch.setattr(store, "_decide_once", connection_lost)
    with pytest.raises(ConnectionError):
        await store.decide(request.id, approve())
    assert await store.spent("gpu", time.time()) == 6
    assert len(await held(redis, counter(day=today(store)))) == 1


async def test_the_counter_covers_every_approval_under_a_mixed_load(store, redis):
    # Team routes, policy allows and people's approvals at once: afterwards the counter equals
    # the costs of the approved requests (none held), and the team rule never crossed the budget.
    team = [await ask(store, n) for n in range(10)]
    allowed = [await ask(store, n) for n in range(10, 15)]
    asked = [await routed(store, n, cost=1) for n in range(15, 20)]
    await asyncio.wait_for(
        asyncio.gather(
            *(store.route(r.id, team_route(cost=4, budget=10), GRANT) for r in team),
            *(store.route(r.id, Route(rule="gpu", action=Action.ALLOW, cost=2)) for r in allowed),
            *(store.decide(r.id, approve()) for r in asked),
        ),
        10,
    )
    approved = [r for r in await store.many([r.id for r in team + allowed + asked]) if r is not None]
    costs = sum(r.cost or 0 for r in approved if r.state is State.APPROVED)
    assert await amount(redis, counter(day=today(store))) == costs
    assert await held(redis, counter(day=today(store))) == {}
    assert sum(r.state is State.APPROVED for r in approved[:10]) <= 10 // 4


# -- upgrading a single primary: the day's spend counted by the old version ----------------------


async def test_carry_legacy_adds_the_old_counter_once(store, redis):
    await redis.set(keys.legacy_spend("gpu", DAY), "12.5")
    await redis.set(counter(), "3")  # already counted by the new version
    assert await store.spend.carry_legacy(["gpu", "other"], DAY) == {"gpu": "12.5"}
    assert await store.spend.carry_legacy(["gpu", "other"], DAY) == {}  # a restart adds nothing more
    assert await amount(redis, counter()) == 15.5
    assert await amount(redis, counter("other")) == 0


async def test_an_unreadable_old_counter_stays_unreadable(store, redis):
    # As the old version did, its budget refuses what it cannot count, instead of starting at 0.
    await redis.set(keys.legacy_spend("gpu", DAY), "inf")
    await store.spend.carry_legacy(["gpu"], DAY)
    refused = await store.spend.reserve(counter(), request_id="r1", cost="1", budget="", now=1.0)
    assert (refused.verdict, refused.problem) == (Verdict.INVALID, "spend")


TEAM_POLICY = """
rules:
  - name: gpu
    tool: Bash
    command: "^gpu "
    cost: 40
    daily_budget: 50
"""


async def test_a_worker_upgraded_mid_day_keeps_the_days_budget(
    tmp_path, start_worker, make_approver, slack, redis
):
    from bot.approvals.allowlist import TeamAllowList
    from bot.approvals.rules import Rule
    from tests.conftest import cancelled, context, policy_file, posted
    from tests.test_integrity import audit

    await redis.set(keys.legacy_spend("gpu", utc_day(time.time())), "40")  # approved before the upgrade
    await start_worker(approval_policy=policy_file(tmp_path, TEAM_POLICY))
    approver = await make_approver()
    await TeamAllowList(redis).add([Rule.parse("Bash(gpu *)")], added_by="U0CAROL", route="gpu")
    call = asyncio.create_task(approver.can_use_tool("Bash", {"command": "gpu train"}, context("toolu_g")))
    await posted(slack)  # $40 before the upgrade + $40 > $50: a person decides
    declined = [e for e in await audit(redis) if e["event"] == "team_rule_not_applied"]
    assert "over_budget" in declined[-1]["declined"]
    await cancelled(call)


async def test_carry_legacy_without_an_old_counter_marks_nothing(store, redis):
    assert await store.spend.carry_legacy(["gpu"], DAY) == {}
    assert await redis.keys("*") == []
    await redis.set(keys.legacy_spend("gpu", DAY), "2")  # an old worker, still running, counts later
    assert await store.spend.carry_legacy(["gpu"], DAY) == {"gpu": "2"}


async def test_an_approval_whose_settlement_fails_is_still_reported_approved(store, redis, monkeypatch):
    # COMMIT lost: the approval stands and is reported; the amount stays held (counted).
    request = await routed(store, cost=6)

    async def lost(*_args: Any) -> None:
        raise ConnectionError("lost")

    monkeypatch.setattr(store.spend, "commit", lost)
    assert (await store.decide(request.id, approve())).won
    assert await store.spent("gpu", time.time()) == 6
    assert len(await held(redis, counter(day=today(store)))) == 1
