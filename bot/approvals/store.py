"""RequestStore: the requests in Redis and their atomic transitions."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import heapq
import itertools
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import cast

from .. import metrics
from ..redis_client import RedisClient
from . import bounds, groups, keys, record
from .coalesce import Coalescer
from .codec import pairs, text
from .decision import Decision, Refusal, Transition
from .lua.claims import UNLOCK
from .lua.create import CREATE, ROUTE
from .lua.decide import DECIDE, MAY_DECIDE
from .lua.escalate import ESCALATE, TIMEOUT
from .lua.post import MARK_POSTED, SET_IF_EXISTS, START_POST
from .lua.runner import ScriptRunner
from .model import ApprovalRequest, NewRequest, State, call_hash, mismatch_id, to_json
from .policy_rule import Action, Route
from .record import Field
from .spend import NOTHING, Reservation, SpendLedger, Verdict
from .store_deadlines import DeadlineStore
from .store_posts import PostStore
from .store_threads import ThreadStore

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TeamGrant:
    """A team allow-list rule that matches a call, and who granted it."""

    rule: str
    by: str
    """The Slack user who clicked Always allow: the rule stands in for them, no more."""


def utc_day(now: float) -> str:
    return dt.datetime.fromtimestamp(now, dt.UTC).date().isoformat()


class RequestStore(DeadlineStore, PostStore, ThreadStore):
    """Creates, reads, routes and decides approval requests.

    Every change goes through one Lua script, so any number of agent
    processes and bot workers can share one Redis safely: the first
    transition out of ``pending`` wins and later ones learn that they lost.
    Its deadlines, Slack message and thread are kept by ``DeadlineStore``,
    ``PostStore`` and ``ThreadStore``.
    """

    def __init__(self, redis: RedisClient, *, today: Callable[[float], str] = utc_day) -> None:
        """``today`` names the budget day of an epoch time (the policy's time zone)."""
        self.redis = redis
        self.today = today
        self._scripts = ScriptRunner(redis)
        self._create = self._scripts.register(CREATE)
        self._route = self._scripts.register(ROUTE)
        self._decide = self._scripts.register(DECIDE)
        self._mark_posted = self._scripts.register(MARK_POSTED)
        self._start_post = self._scripts.register(START_POST)
        self._escalate = self._scripts.register(ESCALATE)
        self._timeout = self._scripts.register(TIMEOUT)
        self._may_decide = self._scripts.register(MAY_DECIDE)
        self._set_if_exists = self._scripts.register(SET_IF_EXISTS)
        self._unlock = self._scripts.register(UNLOCK)
        self.spend = SpendLedger(self._scripts)
        self._reads = Coalescer(self.many)

    async def aclose(self) -> None:
        """Stop the batched reads and transitions still running; call it before closing ``redis``.

        Their tasks outlive cancelled callers (``Coalescer.aclose``)."""
        await self._reads.aclose()
        await self._scripts.aclose()

    async def create(self, new: NewRequest) -> tuple[ApprovalRequest, bool]:
        """Store ``new`` and queue its Slack post, unless it exists already.

        Returns the stored request and whether this call created it. Asking
        twice for the same ``tool_use_id`` returns the first request as it is
        now (pending or decided): no second post. The same ``tool_use_id``
        with another tool or input is another call: the mismatch is audited
        on the first request and the call gets a request of its own
        (``model.mismatch_id``), so it never inherits a decision people made
        about something else. Raises ``bounds.OutOfRange`` for a timeout or
        cost that cannot be stored.
        """
        bounds.seconds(new.timeout, "the request's timeout")
        if new.cost is not None:
            bounds.dollars(new.cost, "the request's cost")
        call = call_hash(new.tool_name, new.tool_input, new.resolved)
        other = mismatch_id(new.id, call)
        request, created = await self._create_once(new, call, other)
        if request is None:
            log.warning("request %s: tool_use_id %r asked again with another call", new.id, new.tool_use_id)
            request, created = await self._create_once(dataclasses.replace(new, id=other), call, other)
        if request is None:
            raise RuntimeError(f"request {new.id}: its mismatch id holds another call too")
        return request, created

    async def _create_once(
        self, new: NewRequest, call: str, other: str
    ) -> tuple[ApprovalRequest | None, bool]:
        """One CREATE: (the request, created), or (None, False) when ``new.id`` holds
        another call (the request then points to ``other``, this call's own id)."""
        now = time.time()
        deadline = now + new.timeout if new.timeout > 0 else 0
        fields = record.new_fields(new, call=call, now=now, deadline=deadline)
        flat = [item for pair in fields.items() for item in pair]
        reply = await self._scripts.run(
            self._create,
            keys=keys.script_keys(new.id),
            args=[new.id, repr(now), repr(deadline), new.agent or "agent", new.tool_name, call, other, *flat],
        )
        status = text(reply[0])
        if status == "exists":
            return record.decode(pairs(reply[1:])), False
        if status == "mismatch":
            return None, False
        if status == "invalid":
            raise bounds.OutOfRange(f"request {new.id}: {text(reply[1])} cannot be stored")
        return record.decode(fields), True

    async def latest(self, request_id: str) -> str:
        """The request of the newest call under ``request_id``'s ``tool_use_id``
        (itself, or the request of another input that reused the id)."""
        latest = await self.redis.hget(keys.request(request_id), Field.LATEST)
        return text(latest) if latest else request_id

    async def get(self, request_id: str) -> ApprovalRequest | None:
        """The request, or None. Reads started together share one round trip."""
        return await self._reads.get(request_id)

    async def many(self, request_ids: list[str]) -> list[ApprovalRequest | None]:
        """Several requests (with their votes) in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for request_id in request_ids:
                pipe.hgetall(keys.request(request_id))
                pipe.hgetall(keys.votes(request_id))
            replies = await pipe.execute()
        out: list[ApprovalRequest | None] = []
        for raw, votes in zip(replies[::2], replies[1::2], strict=True):
            out.append(record.decode(_decoded(raw), _decoded(votes)) if raw else None)
        return out

    async def route(self, request_id: str, route: Route, team: Iterable[TeamGrant] = ()) -> State | None:
        """Store and apply what the policy decided for a request, unless it was routed already.

        In one atomic step: ``allow`` and ``deny`` end the request, and the
        first of ``team`` (allow-list rules matching the call) whose granter
        could have approved it alone ends it approved; otherwise it stays
        pending on this route. Returns the request's state, or None if it no
        longer exists.
        """
        escalation = [{"after": step.after, "approvers": list(step.approvers)} for step in route.escalation]
        now = time.time()
        day = self.today(now)
        candidates = [{"rule": grant.rule, "by": grant.by} for grant in team]
        # ROUTE checks each granter against the route's approver groups (no granter, no check).
        granters = [grant["by"] for grant in candidates]
        members = await groups.memberships(self.redis, route.approvers, granters) if granters else {}
        held = await self._reserve_route(request_id, route, day, now, team=bool(candidates))
        reply = await self._scripts.run(
            self._route,
            keys=keys.script_keys(request_id),
            args=[
                request_id,
                repr(now),
                route.rule,
                route.channel,
                " ".join(route.approvers),
                " ".join(route.mention),
                route.required,
                record.flag(route.allow_self),
                repr(route.timeout),
                route.on_timeout.value,
                json.dumps(escalation),
                record.optional_number(route.cost),
                record.optional_number(route.daily_budget),
                keys.spend(route.rule),
                route.mode.value if route.mode else "",
                route.action.value,
                route.message,
                day,
                json.dumps(candidates),
                groups.as_argv(members),  # ARGV[20]
                held.token,
                held.verdict.value,
            ],
        )
        # An exception above leaves the reservation held: less budget, never more.
        status = text(reply[0])
        await self.spend.settle(held, used=status == "routed" and text(reply[2]) == record.FLAG)
        if status == "missing":
            return None
        if status == "invalid":
            raise bounds.OutOfRange(f"request {request_id}: the route's {text(reply[1])} cannot be stored")
        if status == "routed":  # this call routed it ("already": another attempt did, and counted it)
            metrics.request_routed(route.rule)
        return State(text(reply[1]))

    async def _reserve_route(
        self, request_id: str, route: Route, day: str, now: float, *, team: bool
    ) -> Reservation:
        """The reservation ROUTE may approve with: for a route with a cost that allows, or asks with
        team rules that may stand in (checked against the daily budget, so concurrent routes cannot
        overspend it together)."""
        if route.cost is None or not (route.action is Action.ALLOW or (route.action is Action.ASK and team)):
            return NOTHING
        budget = record.optional_number(route.daily_budget) if route.action is Action.ASK else ""
        return await self.spend.reserve(
            keys.spend(route.rule, day),
            request_id=request_id,
            cost=record.optional_number(route.cost),
            budget=budget,
            now=now,
        )

    async def decide(self, request_id: str, decision: Decision) -> Transition:
        """Apply ``decision`` if the request is still pending.

        A person's decision (``decision.by_person``) must pass the request's
        approver rules, and an approval (or an answer: see DECIDE) counts as
        one vote until enough approvers agree. On success the workers are told to update the Slack
        message and every waiting agent process is woken. The returned
        request is the state after the attempt, so a loser can say who won.

        An approval with a cost holds it on its route's counter first (counted, never refused by
        the budget: people may approve past it). If the request's cost or route changed between
        that read and DECIDE, DECIDE changes nothing and this asks once more; a second change
        refuses the approval (``Refusal.CHANGED``), never approves it.
        """
        # Only a person's decision is checked against the approvers (``check``).
        members = (
            await groups.for_requests(self.redis, [request_id], decision.actor) if decision.by_person else {}
        )
        for _attempt in range(2):
            now = time.time()
            day = self.today(now)
            held = await self._reserve_decision(request_id, decision, day, now)
            if held.verdict is Verdict.INVALID:
                return Transition(won=False, request=await self.get(request_id), refused=Refusal.INVALID)
            reply = await self._decide_once(request_id, decision, now, day, held, members)
            # An exception above leaves the reservation held: less budget, never more.
            status = text(reply[0])
            await self.spend.settle(held, used=status == "won")
            if status != "retry":
                return await self._transition(request_id, reply)
            log.info("request %s: its cost or route changed while deciding; reading it again", request_id)
        return Transition(won=False, request=await self.get(request_id), refused=Refusal.CHANGED)

    async def _reserve_decision(
        self, request_id: str, decision: Decision, day: str, now: float
    ) -> Reservation:
        """The reservation an approval of the pending request needs (its cost on its route's counter
        for ``day``), read from the request as it is now; DECIDE checks it is still that."""
        if decision.state is not State.APPROVED:
            return NOTHING
        state, cost, spend_key = await self.redis.hmget(
            keys.request(request_id), [Field.STATE, Field.COST, Field.SPEND_KEY]
        )
        if state is None or text(state) != State.PENDING.value or not cost or not spend_key:
            return NOTHING
        return await self.spend.reserve(
            keys.spend_counter(text(spend_key), day),
            request_id=request_id,
            cost=text(cost),
            budget="",
            now=now,
        )

    async def _decide_once(
        self,
        request_id: str,
        decision: Decision,
        now: float,
        day: str,
        held: Reservation,
        members: dict[str, list[str]],
    ) -> list[bytes]:
        reply: list[bytes] = await self._scripts.run(
            self._decide,
            keys=keys.script_keys(request_id),
            args=[
                request_id,
                decision.state.value,
                decision.actor,
                decision.actor_name,
                decision.reason,
                to_json(decision.updated_input) if decision.updated_input is not None else "",
                repr(now),
                decision.audit_event.value,
                record.flag(decision.always),
                day,
                record.flag(decision.by_person),
                "" if decision.revision is None else str(decision.revision),
                record.flag(decision.stop),
                groups.as_argv(members),  # ARGV[14]
                held.token,
                held.counter if held.held else "",
                held.cost if held.held else "",
            ],
        )
        return reply

    async def _transition(self, request_id: str, reply: list[bytes]) -> Transition:
        """What a DECIDE reply (other than ``retry``) means for the decider."""
        status = text(reply[0])
        if status == "missing":
            return Transition(won=False, request=None)
        request = await self.get(request_id)
        if status in ("won", "lost"):
            return Transition(won=status == "won", request=request)
        if status == "vote":
            return Transition(won=False, request=request, votes=(int(text(reply[1])), int(text(reply[2]))))
        return Transition(
            won=False,
            request=request,
            refused=Refusal(status),
            groups=tuple(text(g) for g in reply[1:]) if status == Refusal.UNKNOWN_GROUPS else (),
        )

    async def ended(self, request_ids: Iterable[str]) -> set[str]:
        """Which of ``request_ids`` are no longer pending (or no longer exist)."""
        ids = list(request_ids)
        if not ids:
            return set()
        async with self.redis.pipeline(transaction=False) as pipe:
            for request_id in ids:
                pipe.hget(keys.request(request_id), Field.STATE)
            states = await pipe.execute()
        return {i for i, s in zip(ids, states, strict=True) if s is None or text(s) != State.PENDING.value}

    async def pending(self, limit: int = 200) -> list[str]:
        """Ids of pending requests, oldest first (the oldest ``limit`` of each shard, merged)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in keys.ALL_SHARDS:
                pipe.zrange(keys.pending(shard), 0, limit - 1, withscores=True)
            shards = cast(list[list[tuple[bytes, float]]], await pipe.execute())
        oldest_first = heapq.merge(*shards, key=lambda member: member[1])
        return [text(member) for member, _created in itertools.islice(oldest_first, limit)]

    async def decidable_by(self, user: str, request_ids: list[str]) -> list[str]:
        """The pending ids among ``request_ids`` that ``user`` may decide now
        (an approver group not in the cache counts as no)."""
        verdicts = await self._may_decide_each(user, request_ids, approving=False)
        return [i for i in request_ids if verdicts[i] == "ok"]

    async def check(self, request_id: str, user: str, *, approving: bool) -> Transition:
        """What ``decide`` would say about ``user``'s decision, without deciding."""
        verdicts = await self._may_decide_each(user, [request_id], approving=approving)
        status, *unknown = verdicts[request_id].split()
        request = await self.get(request_id)
        if status in ("ok", "ended"):
            return Transition(won=False, request=request)
        return Transition(won=False, request=request, refused=Refusal(status), groups=tuple(unknown))

    async def _may_decide_each(self, user: str, request_ids: list[str], *, approving: bool) -> dict[str, str]:
        """MAY_DECIDE's verdict on each request: one run per shard, since a script touches one slot
        (the runs share a round trip), with the memberships read just before."""
        if not request_ids:
            return {}
        members = groups.as_argv(await groups.for_requests(self.redis, request_ids, user))
        by_shard: dict[int, list[str]] = {}
        for request_id in dict.fromkeys(request_ids):
            by_shard.setdefault(keys.shard_of(request_id), []).append(request_id)
        runs = [
            self._scripts.run(
                self._may_decide,
                keys=[keys.request(i) for i in ids],
                args=[user, record.flag(approving), members],
            )
            for ids in by_shard.values()
        ]
        verdicts = await asyncio.gather(*runs)
        return {
            request_id: text(verdict)
            for ids, replies in zip(by_shard.values(), verdicts, strict=True)
            for request_id, verdict in zip(ids, replies, strict=True)
        }

    async def spent(self, rule: str, now: float) -> float:
        """Dollars approved on ``rule``'s route on the budget day of ``now``, the amounts held for
        approvals in progress included (the higher figure: what is shown is never below what was approved)."""
        value = await self.redis.get(keys.spend(rule, self.today(now)))
        return float(text(value)) if value is not None else 0.0


def _decoded(raw: dict[bytes | str, bytes | str]) -> dict[str, str]:
    return {text(k): text(v) for k, v in raw.items()}
