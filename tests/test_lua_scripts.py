"""Every result code of every Lua script (``bot.approvals.lua``), on the real redis-server.

Through ``RequestStore`` (or the Python API that owns the script) where it tells the
codes apart; through the registered script itself where it does not.
"""

from __future__ import annotations

import glob
import re
import time
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import ResponseError

from bot.approvals import keys
from bot.approvals.audit import AuditLog
from bot.approvals.bounds import OutOfRange
from bot.approvals.codec import text
from bot.approvals.lua import chain, claims, create, decide, escalate, jobs, post, spend
from bot.approvals.lua.fill import CONSTANTS, READ_ONLY, SHEBANG
from bot.approvals.model import (
    ApprovalRequest,
    Decision,
    NewRequest,
    Refusal,
    State,
    call_hash,
    mismatch_id,
    request_id_for,
)
from bot.approvals.names import AuditEvent, JobKind
from bot.approvals.policy_rule import Action, EscalationStep, OnTimeout, Route
from bot.approvals.queue import JobQueue
from bot.approvals.record import Field
from bot.approvals.store import RequestStore, TeamGrant
from bot.slack import budget
from tests.audit_streams import audit_stream

LUA = Path(create.__file__).parent
SCRIPTS = {
    "APPEND_AUDIT": chain.APPEND_AUDIT,
    "CALL_RAN": claims.CALL_RAN,
    "UNLOCK": claims.UNLOCK,
    "CREATE": create.CREATE,
    "ROUTE": create.ROUTE,
    "DECIDE": decide.DECIDE,
    "MAY_DECIDE": decide.MAY_DECIDE,
    "ESCALATE": escalate.ESCALATE,
    "TIMEOUT": escalate.TIMEOUT,
    "RELEASE_JOBS": jobs.RELEASE_JOBS,
    "START_POST": post.START_POST,
    "MARK_POSTED": post.MARK_POSTED,
    "SET_IF_EXISTS": post.SET_IF_EXISTS,
    "RESERVE": spend.RESERVE,
    "RELEASE": spend.RELEASE,
    "COMMIT": spend.COMMIT,
}
"""Every script, filled in as Redis runs it."""


async def ask(store: RequestStore, tool_use_id: str = "toolu_1", **fields: Any) -> ApprovalRequest:
    new = NewRequest(
        id=request_id_for(tool_use_id),
        tool_name="Bash",
        tool_input=fields.pop("tool_input", {"command": "ls"}),
        tool_use_id=tool_use_id,
        **fields,
    )
    request, _ = await store.create(new)
    return request


async def run(redis, script: str, script_keys: list[str], *args: Any) -> Any:
    """The script's reply, decoded (a list of str, or a number)."""
    reply = await redis.register_script(script)(keys=script_keys, args=list(args))
    return [text(item) for item in reply] if isinstance(reply, list) else reply


def route_args(request_id: str, **changes: str) -> list[str]:
    """ROUTE's ARGV as ``RequestStore.route`` writes it for an ``ask`` route."""
    args = {
        "id": request_id,
        "now": repr(time.time()),
        "rule": "default",
        "channel": "",
        "approvers": "",
        "mention": "",
        "required": "1",
        "allow_self": "",
        "timeout": "0",
        "on_timeout": "deny",
        "escalation": "[]",
        "cost": "",
        "budget": "",
        "spend_key": keys.spend("default"),
        "mode": "",
        "action": "ask",
        "message": "",
        "day": "2026-12-07",
        "candidates": "[]",
        "groups": "{}",
        "spend_token": "",
        "spend_verdict": "",
    }
    assert set(changes) <= set(args)
    return list({**args, **changes}.values())


# -- CREATE ------------------------------------------------------------------------------------


async def test_create_created_then_exists(store):
    first, created = await store.create(NewRequest(id="r1", tool_name="Bash", tool_input={"a": 1}))
    again, created_again = await store.create(NewRequest(id="r1", tool_name="Bash", tool_input={"a": 1}))
    assert (created, created_again) == (True, False)
    assert again == first and first.state is State.PENDING


async def test_create_mismatch_points_to_the_calls_own_request(store, redis):
    first = await ask(store, tool_input={"command": "ls"})
    other = await ask(store, tool_input={"command": "rm -rf /"})
    assert other.id == mismatch_id(first.id, call_hash("Bash", {"command": "rm -rf /"}))
    assert await store.latest(first.id) == other.id
    events = [f[b"event"].decode() for _id, f in await audit_stream(redis)]
    assert AuditEvent.INPUT_MISMATCH in events


async def test_create_invalid_deadline(redis):
    reply = await run(
        redis, create.CREATE, keys.script_keys("r1"), "r1", "1", "nan", "agent", "Bash", "h", "m"
    )
    assert reply == ["invalid", "deadline"]
    assert await redis.exists(keys.request("r1")) == 0


# -- ROUTE -------------------------------------------------------------------------------------


async def test_route_missing(store):
    assert await store.route("nope", Route(rule="default", action=Action.ASK)) is None


async def test_route_routed_then_already(store, redis):
    request = await ask(store)
    assert await store.route(request.id, Route(rule="first", action=Action.ASK)) is State.PENDING
    assert await run(redis, create.ROUTE, keys.script_keys(request.id), *route_args(request.id)) == [
        "already",
        "pending",
    ]
    assert await store.route(request.id, Route(rule="second", action=Action.DENY)) is State.PENDING
    stored = await store.get(request.id)
    assert stored is not None and stored.rule == "first"


@pytest.mark.parametrize(("action", "state"), [(Action.ALLOW, State.APPROVED), (Action.DENY, State.DENIED)])
async def test_route_routed_ends_an_allow_or_deny(store, action, state):
    request = await ask(store)
    assert await store.route(request.id, Route(rule="r", action=action)) is state


async def test_route_routed_by_a_team_rule(store):
    request = await ask(store)
    team = [TeamGrant(rule="Bash(ls)", by="U1")]
    assert await store.route(request.id, Route(rule="r", action=Action.ASK), team) is State.APPROVED


@pytest.mark.parametrize(
    ("route", "what"),
    [
        (Route(rule="r", action=Action.ASK, timeout=float("nan")), "timeout"),
        (Route(rule="r", action=Action.ASK, cost=float("inf")), "cost"),
        (Route(rule="r", action=Action.ASK, daily_budget=float("inf")), "budget"),
    ],
)
async def test_route_invalid_numbers(store, route, what):
    request = await ask(store)
    with pytest.raises(OutOfRange, match=what):
        await store.route(request.id, route)
    stored = await store.get(request.id)
    assert stored is not None and not stored.routed


@pytest.mark.parametrize(
    ("changes", "what"),
    [
        ({"escalation": "{not json"}, "escalation"),
        ({"escalation": '[{"after": "soon"}]'}, "escalation"),
        ({"candidates": "[1]"}, "candidates"),
    ],
)
async def test_route_invalid_json(store, redis, changes, what):
    request = await ask(store)
    reply = await run(redis, create.ROUTE, keys.script_keys(request.id), *route_args(request.id, **changes))
    assert reply == ["invalid", what]
    assert await redis.hget(keys.request(request.id), Field.ROUTED) is None


# -- START_POST, MARK_POSTED, SET_IF_EXISTS ----------------------------------------------------


async def test_start_post_missing_and_ok(store, redis):
    assert await run(redis, post.START_POST, keys.script_keys("gone"), "gone", "1") == ["missing"]
    assert await redis.exists(keys.request("gone")) == 0
    request = await ask(store)
    assert await run(redis, post.START_POST, keys.script_keys(request.id), request.id, "1") == ["ok"]
    await store.start_posting(request.id)  # the first attempt's time is kept
    stored = await store.get(request.id)
    assert stored is not None and stored.post_started == 1


async def test_mark_posted_ok_already_missing(store, redis):
    request = await ask(store)
    assert await store.mark_posted(request.id, "C1", "1.1") is State.PENDING
    assert await store.mark_posted(request.id, "C1", "2.2") is None  # already
    assert await run(
        redis, post.MARK_POSTED, keys.script_keys(request.id), request.id, "C1", "3.3", "1", ""
    ) == ["already"]
    # The thread's root has its own slot: the poster links it (``link_thread``), not the script.
    assert await store.request_for_thread("C1", "1.1") is None
    assert await store.mark_posted("gone", "C1", "4.4") is None  # missing
    assert await run(redis, post.MARK_POSTED, keys.script_keys("gone"), "gone", "C1", "4.4", "1", "") == [
        "missing"
    ]


async def test_set_if_exists(store, redis):
    request = await ask(store)
    assert await run(redis, post.SET_IF_EXISTS, [keys.request(request.id)], Field.SHOWN, "a") == 1
    await store.set_shown(request.id, "digest")
    assert await store.shown(request.id) == "digest"
    assert await run(redis, post.SET_IF_EXISTS, [keys.request("gone")], Field.SHOWN, "a") == 0
    await store.set_shown("gone", "digest")
    assert await redis.exists(keys.request("gone")) == 0


# -- DECIDE ------------------------------------------------------------------------------------


async def routed(store: RequestStore, tool_use_id: str = "toolu_1", **route: Any) -> ApprovalRequest:
    request = await ask(store, tool_use_id, requested_by=route.pop("requested_by", ""))
    await store.route(request.id, Route(rule="r", action=Action.ASK, **route))
    stored = await store.get(request.id)
    assert stored is not None
    return stored


def approve(actor: str = "U1", **fields: Any) -> Decision:
    return Decision(State.APPROVED, actor=actor, revision=fields.pop("revision", 0), **fields)


async def test_decide_missing_won_lost(store):
    assert (await store.decide("gone", approve())).request is None
    request = await routed(store)
    won = await store.decide(request.id, approve())
    assert won.won and won.request is not None and won.request.state is State.APPROVED
    lost = await store.decide(request.id, Decision(State.DENIED, actor="U2"))
    assert not lost.won and lost.refused is None and lost.request is not None
    assert lost.request.state is State.APPROVED


async def test_decide_vote_and_voted(store):
    request = await routed(store, required=2)
    vote = await store.decide(request.id, approve("U1"))
    assert not vote.won and vote.votes == (1, 2)
    again = await store.decide(request.id, approve("U1"))
    assert again.refused is Refusal.VOTED
    assert (await store.decide(request.id, approve("U2"))).won


async def test_decide_answer_vote_and_voted(store):
    request = await routed(store, required=2)
    answers = {"questions": [], "answers": {"Which?": "A"}}
    proposal = Decision(State.ANSWERED, actor="U1", revision=0, updated_input=answers)
    vote = await store.decide(request.id, proposal)
    assert vote.votes == (1, 2)
    agree = Decision(State.ANSWERED, actor="U1", revision=1, updated_input=answers)
    assert (await store.decide(request.id, agree)).refused is Refusal.VOTED


async def test_decide_stale(store):
    request = await routed(store)
    assert (await store.decide(request.id, approve(revision=None))).refused is Refusal.STALE
    assert (await store.decide(request.id, approve(revision=7))).refused is Refusal.STALE


async def test_decide_self_and_not_approver(store):
    request = await routed(store, approvers=("U1", "U2"), requested_by="U1")
    assert (await store.decide(request.id, approve("U1"))).refused is Refusal.SELF
    assert (await store.decide(request.id, approve("U3"))).refused is Refusal.NOT_APPROVER


async def test_decide_unknown_groups(store):
    request = await routed(store, approvers=("S1", "S2"))
    refused = await store.decide(request.id, approve("U3"))
    assert refused.refused is Refusal.UNKNOWN_GROUPS and refused.groups == ("S1", "S2")


async def test_decide_no_always(store):
    request = await routed(store, required=2)
    assert (await store.decide(request.id, approve(always=True))).refused is Refusal.NO_ALWAYS


async def test_decide_invalid_cost(store, redis):
    request = await routed(store, cost=1.0)
    await redis.hset(keys.request(request.id), Field.COST, "inf")
    day = store.today(time.time())
    reply = await run(redis, decide.DECIDE, keys.script_keys(request.id), *decide_args(request.id, day))
    assert reply == ["invalid", "cost"]
    assert (await store.decide(request.id, approve())).refused is Refusal.INVALID
    assert (await store.decide(request.id, Decision(State.DENIED))).won  # it can still be denied


async def test_decide_invalid_spend(store, redis):
    # The counter cannot be added to: RESERVE says so, and the approval is refused before DECIDE.
    request = await routed(store, cost=1.0)
    counter = keys.spend("r", store.today(time.time()))
    await redis.set(counter, "inf")
    reply = await run(
        redis, spend.RESERVE, [counter, keys.spend_held(counter)], "t", request.id, "1", "", "1"
    )
    assert reply == ["invalid", "spend"]
    assert (await store.decide(request.id, approve())).refused is Refusal.INVALID
    assert (await store.decide(request.id, Decision(State.DENIED))).won  # it can still be denied


def decide_args(request_id: str, day: str, *spend: str) -> list[str]:
    """DECIDE's ARGV for U1 approving revision 0, holding ``spend`` (token, counter, cost) if given."""
    held = list(spend) or ["", "", ""]
    return [
        request_id, "approved", "U1", "", "", "", repr(time.time()), "approved", "", day, "1", "0", "", "{}",
        *held,
    ]  # fmt: skip


async def test_decide_invalid_answers(store):
    request = await routed(store)
    empty = Decision(State.ANSWERED, actor="U1", revision=0)
    assert (await store.decide(request.id, empty)).refused is Refusal.INVALID


# -- MAY_DECIDE --------------------------------------------------------------------------------


async def test_may_decide_every_verdict(store, redis):
    anyone = await routed(store, "toolu_a")
    ended = await routed(store, "toolu_b")
    await store.decide(ended.id, Decision(State.DENIED))
    own = await routed(store, "toolu_c", approvers=("U1",), requested_by="U1")
    others = await routed(store, "toolu_d", approvers=("U2",))
    groups = await routed(store, "toolu_e", approvers=("S1", "S2"))
    ids = [anyone.id, ended.id, own.id, others.id, groups.id]
    reply = await run(redis, decide.MAY_DECIDE, [keys.request(i) for i in ids], "U1", "1", "{}")
    assert reply == ["ok", "ended", "self", "not_approver", "unknown_groups S1 S2"]
    assert await store.decidable_by("U1", ids) == [anyone.id, own.id]  # not approving: self is fine
    assert (await store.check(own.id, "U1", approving=True)).refused is Refusal.SELF
    assert (await store.check(groups.id, "U1", approving=False)).groups == ("S1", "S2")
    assert (await store.check(ended.id, "U1", approving=True)).refused is None


# -- ESCALATE, TIMEOUT -------------------------------------------------------------------------


STEP = EscalationStep(after=60, approvers=["U0ESCALATE"])


async def test_escalate_escalated_taken_ended(store, redis):
    request = await routed(store, escalation=(STEP,))
    await store.mark_posted(request.id, "C1", "1.1")
    member = keys.escalation_member(request.id, 0)
    assert await store.escalate(request.id, 0)
    stored = await store.get(request.id)
    assert stored is not None and stored.escalated == (0,) and "U0ESCALATE" in stored.approvers
    args = [request.id, member, repr(time.time()), 0]
    assert await run(redis, escalate.ESCALATE, keys.script_keys(request.id), *args) == ["taken"]
    await store.decide(request.id, Decision(State.DENIED))
    await redis.zadd(keys.deadlines(keys.shard_of(request.id)), {member: 0})
    assert await run(redis, escalate.ESCALATE, keys.script_keys(request.id), *args) == ["ended"]
    assert not await store.escalate(request.id, 0)  # taken: the member was removed just now


async def test_escalate_ended_for_a_step_it_does_not_have(store, redis):
    request = await routed(store, escalation=(STEP,))
    member = keys.escalation_member(request.id, 5)
    await redis.zadd(keys.deadlines(keys.shard_of(request.id)), {member: 0})
    args = [request.id, member, repr(time.time()), 5]
    assert await run(redis, escalate.ESCALATE, keys.script_keys(request.id), *args) == ["ended"]


async def test_timeout_not_due_expire_ended(store, redis):
    request = await routed(store)
    assert await store.time_out(request.id) == "not_due"  # no deadline at all
    await redis.zadd(keys.deadlines(keys.shard_of(request.id)), {request.id: time.time() + 3600})
    assert await store.time_out(request.id) == "not_due"
    await redis.zadd(keys.deadlines(keys.shard_of(request.id)), {request.id: 0})
    assert await store.time_out(request.id) == "expire"
    await store.decide(request.id, Decision(State.EXPIRED))
    await redis.zadd(keys.deadlines(keys.shard_of(request.id)), {request.id: 0})
    assert await store.time_out(request.id) == "ended"
    assert await redis.zscore(keys.deadlines(keys.shard_of(request.id)), request.id) is None


async def test_timeout_escalated_then_expire(store, redis):
    request = await routed(store, timeout=600, on_timeout=OnTimeout.ESCALATE, escalation=(STEP,))
    await store.mark_posted(request.id, "C1", "1.1")
    await redis.zadd(keys.deadlines(keys.shard_of(request.id)), {request.id: 0})
    assert await store.time_out(request.id) == "escalated"
    stored = await store.get(request.id)
    assert stored is not None and stored.timeout_escalated and stored.escalated == (0,)
    await redis.zadd(keys.deadlines(keys.shard_of(request.id)), {request.id: 0})
    assert await store.time_out(request.id) == "expire"  # it escalates once


# -- APPEND_AUDIT, RELEASE_JOBS, CALL_RAN, UNLOCK ----------------------------------------------


async def test_append_audit_ok(redis_or_cluster):
    redis, shard = redis_or_cluster, keys.AUDIT_SHARD_DEFAULT
    reply = await run(
        redis, chain.APPEND_AUDIT, keys.audit_script_keys(shard), "", AuditEvent.DISCUSSION, "U1", "1"
    )
    assert reply == b"ok"
    await AuditLog(redis).append(AuditEvent.RULE_ADDED, actor="U1", rule="Bash(ls)")
    events = [f[b"event"].decode() for _id, f in await redis.xrange(keys.audit(shard).stream)]
    assert events == [AuditEvent.GENESIS, AuditEvent.DISCUSSION, AuditEvent.RULE_ADDED]
    assert (await AuditLog(redis).verify(shard)).ok


async def test_append_audit_about_a_request_chains_in_its_shard(redis_or_cluster):
    redis, request_id = redis_or_cluster, request_id_for("toolu_1")
    await AuditLog(redis).append(AuditEvent.DISCUSSION, actor="U1", request=request_id)
    shard = keys.shard_of(request_id)
    assert shard != keys.AUDIT_SHARD_DEFAULT
    events = [f[b"event"].decode() for _id, f in await redis.xrange(keys.audit(shard).stream)]
    assert events == [AuditEvent.GENESIS, AuditEvent.DISCUSSION]
    assert await redis.xlen(keys.audit(keys.AUDIT_SHARD_DEFAULT).stream) == 0
    log = AuditLog(redis)  # each shard's chain is read and verified in its own slot
    assert all(v.ok for v in await log.verify_all())
    assert [e.fields["event"] async for e in log.entries()] == events
    [said] = await log.recent(actor="U1", events=frozenset({AuditEvent.DISCUSSION}), limit=5)
    assert said.shard == shard


async def test_release_jobs_counts_the_jobs_given_back(redis_or_cluster):
    redis = redis_or_cluster
    first, second = [f"r{n}" for n in range(100) if keys.shard_of(f"r{n}") == keys.shard_of("r0")][:2]
    shard = keys.shard_of(first)
    queue = JobQueue(redis, "worker-1", retry_after=30)
    await queue.ensure_group(shard)
    await queue.gather(first)
    await queue.gather(second)
    taken = await queue.take(shard, 10, 10)
    finished, held = taken
    await queue.done(finished)
    ids = [finished.key, held.key]
    assert await queue.release(ids) == 1  # the finished one is gone
    assert await JobQueue(redis, "worker-2", retry_after=30).release(ids) == 0  # not its jobs
    again = await JobQueue(redis, "worker-2", retry_after=30).take(shard, 10, 10)
    assert [job.fields["id"] for job in again] == [second]
    entry_ids = [entry_id for _shard, entry_id in ids]
    reply = await run(redis, jobs.RELEASE_JOBS, [keys.jobs(shard)], keys.JOBS_GROUP, "worker-1", *entry_ids)
    assert reply == 0


async def test_call_ran_allowed_waiting_none(redis_or_cluster):
    redis = redis_or_cluster
    slots = [f"{keys.CALL_CLAIM_PREFIX}{{s:p:f}}:{n}" for n in range(2)]
    assert await run(redis, claims.CALL_RAN, slots) == ["none"]
    await redis.set(slots[0], "wait:token:req1")
    await redis.set(slots[1], "allowed:req2")
    assert await run(redis, claims.CALL_RAN, slots) == ["allowed"]
    assert await redis.get(slots[1]) == keys.CALL_ANSWERED.encode()
    assert await run(redis, claims.CALL_RAN, slots) == ["waiting", "req1"]


async def test_unlock_only_by_its_holder(redis_or_cluster):
    redis, store = redis_or_cluster, RequestStore(redis_or_cluster)
    assert await store.lock_render("r1", "mine")
    assert not await store.lock_render("r1", "theirs")
    assert await run(redis, claims.UNLOCK, [keys.render_lock("r1")], "theirs") == 0
    await store.unlock_render("r1", "theirs")
    assert await redis.get(keys.render_lock("r1")) == b"mine"
    assert await run(redis, claims.UNLOCK, [keys.render_lock("r1")], "mine") == 1
    assert await store.lock_render("r1", "theirs")


# -- what the scripts name ---------------------------------------------------------------------


_HASH_CALL = re.compile(
    r"redis\.call\('(?:HSET|HGET|HMGET|HSETNX|HDEL|HEXISTS|HINCRBY)',\s*(?:KEYS\[1\]|req)\s*,([^)]*)\)"
)


def test_every_request_field_a_script_names_is_a_record_field():
    named = {
        field
        for script in SCRIPTS.values()
        for args in _HASH_CALL.findall(script)
        for field in re.findall(r"'([a-z_]+)'", args)
    }
    assert len(named) > 30
    assert named <= {field.value for field in Field}, named - {field.value for field in Field}


def test_no_script_spells_an_event_a_job_kind_a_state_or_an_actor():
    literal = re.compile(
        r"audit\(\s*'(?!\$\{)"  # the event of an entry
        r"|'event',\s*'(?!\$\{)"
        r"|'kind',\s*'(?!\$\{)"  # the kind of a job
        r"|'actor',\s*'(?!\$\{)"  # an actor that is no person
        r"|(?:state|new|r\[1\])\s*[~=]=\s*'(?!\$\{|')"  # a state
    )
    for path in glob.glob(str(LUA / "*.py")):
        source = Path(path).read_text()
        assert not literal.search(source), f"{path}: {literal.search(source)}"
    filled = {
        *(f"event_{e.name.lower()}" for e in AuditEvent),
        *(f"job_{k.name.lower()}" for k in JobKind),
        *(f"state_{s.name.lower()}" for s in State),
    }
    assert filled <= set(CONSTANTS)
    assert all("${" not in script for script in SCRIPTS.values())


@pytest.mark.parametrize("script", [*SCRIPTS.values(), budget.TAKE, budget.PAUSE])
def test_every_script_is_flagged_to_stay_in_one_slot(script):
    # "#!lua" without allow-cross-slot-keys: on a cluster Redis refuses any key of another slot.
    first, rest = script.split("\n", 1)
    assert first in (SHEBANG, f"{SHEBANG} flags={READ_ONLY}") and SHEBANG not in rest


async def test_over_maxmemory_a_writing_script_is_refused_before_it_starts(redis):
    request = await ask(RequestStore(redis))
    await redis.config_set("maxmemory", 1)  # every byte is over it
    try:
        # Refused as a whole (a write inside a script without the shebang fails "… script: <sha>, on
        # @user_script:<line>", after what came before it): no transition is left half-done.
        with pytest.raises(ResponseError, match=r"^command not allowed when used memory > 'maxmemory'\.$"):
            await run(redis, claims.CALL_RAN, ["appr:call:{x}:0"])
        reply = await run(redis, decide.MAY_DECIDE, [keys.request(request.id)], "U1", "1", "{}")
        assert reply == ["ok"]  # reading still works, as without the shebang
    finally:
        await redis.config_set("maxmemory", 0)


def test_only_a_script_that_never_writes_is_flagged_so():
    flagged = [name for name, script in SCRIPTS.items() if READ_ONLY in script.split("\n", 1)[0]]
    assert flagged == ["MAY_DECIDE"]


def test_no_script_names_a_key_it_is_not_passed():
    chain_keys = keys.audit(keys.shard_of("a"))
    shard = keys.shard_of("a")
    per_shard = (keys.jobs(shard), keys.deadlines(shard), keys.pending(shard), keys.pending_routes(shard))
    named_inside = (
        chain_keys.anchor, chain_keys.cap, *per_shard, *keys.DECISION_CHANNELS,
        keys.USERGROUP_PREFIX, keys.thread_root("C1", "1.1").split("{")[0] + "{t:", ":early", ":root",
    )  # fmt: skip
    # Group caches reach the scripts as ARGV (``approvals.groups``); the thread's keys, from Python.
    # The decisions channel is built from KEYS[1]'s tag: a script can only reach its own shard's.
    assert [key for key in named_inside if any(key in script for script in SCRIPTS.values())] == []


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_every_script_opens_with_its_keys_argv_and_results(name):
    own = SCRIPTS[name].split("-- KEYS:")[-1]
    assert "-- KEYS:" in SCRIPTS[name] and "-- ARGV:" in own and re.search(r"-- Results?:", own), name
