"""RequestStore: the requests in Redis and their atomic transitions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from .. import metrics
from . import bounds, keys, scripts
from .coalesce import Coalescer
from .codec import pairs, text
from .model import (
    ApprovalRequest,
    Decision,
    NewRequest,
    Refusal,
    Reply,
    State,
    Transition,
    call_hash,
    input_hash,
    mismatch_id,
    to_json,
)
from .policy import Route

log = logging.getLogger(__name__)

_ScriptCall = tuple[AsyncScript, list[str], list[Any]]


@dataclasses.dataclass(frozen=True)
class TeamGrant:
    """A team allow-list rule that matches a call, and who granted it."""

    rule: str
    by: str
    """The Slack user who clicked Always allow: the rule stands in for them, no more."""


def utc_day(now: float) -> str:
    return dt.datetime.fromtimestamp(now, dt.UTC).date().isoformat()


class RequestStore:
    """Creates, reads, routes and decides approval requests.

    Every change goes through one Lua script, so any number of agent
    processes and bot workers can share one Redis safely: the first
    transition out of ``pending`` wins and later ones learn that they lost.
    """

    def __init__(self, redis: Redis, *, today: Callable[[float], str] = utc_day) -> None:
        """``today`` names the budget day of an epoch time (the policy's time zone)."""
        self.redis = redis
        self.today = today
        self._create = redis.register_script(scripts.CREATE)
        self._route = redis.register_script(scripts.ROUTE)
        self._decide = redis.register_script(scripts.DECIDE)
        self._mark_posted = redis.register_script(scripts.MARK_POSTED)
        self._start_post = redis.register_script(scripts.START_POST)
        self._escalate = redis.register_script(scripts.ESCALATE)
        self._timeout = redis.register_script(scripts.TIMEOUT)
        self._may_decide = redis.register_script(scripts.MAY_DECIDE)
        self._set_if_exists = redis.register_script(scripts.SET_IF_EXISTS)
        self._unlock = redis.register_script(scripts.UNLOCK)
        self._reads = Coalescer(self.many)
        self._transitions: Coalescer[_ScriptCall, Any] = Coalescer(self._run_scripts)

    async def aclose(self) -> None:
        """Stop the batched reads and transitions still running; call it before closing ``redis``.

        Their tasks outlive cancelled callers (``Coalescer.aclose``)."""
        await self._reads.aclose()
        await self._transitions.aclose()

    @staticmethod
    def _keys(request_id: str) -> list[str]:
        return [
            keys.request(request_id),
            keys.DEADLINES,
            keys.JOBS,
            keys.AUDIT,
            keys.AUDIT_HEAD,
            keys.votes(request_id),
            keys.PENDING,
        ]

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
        fields = {
            "id": new.id,
            "state": State.PENDING.value,
            "tool_name": new.tool_name,
            "tool_input": to_json(new.tool_input),
            "input_hash": input_hash(new.tool_input),
            "call_hash": call,
            "created_at": repr(now),
            "tool_use_id": new.tool_use_id or "",
            "agent": new.agent,
            "requested_by": new.requested_by,
            "channel": new.channel,
            "title": new.title,
            "deadline": repr(deadline),
            "suggestions": to_json(new.suggestions),
            "cost": repr(new.cost) if new.cost is not None else "",
            "revision": "0",
            "mode": new.mode.value,
            "resolved": to_json(new.resolved),
        }
        flat = [item for pair in fields.items() for item in pair]
        reply = await self._transition(
            self._create,
            keys=self._keys(new.id),
            args=[new.id, repr(now), repr(deadline), new.agent or "agent", new.tool_name, call, other, *flat],
        )
        status = text(reply[0])
        if status == "exists":
            return ApprovalRequest.from_redis(pairs(reply[1:])), False
        if status == "mismatch":
            return None, False
        if status == "invalid":
            raise bounds.OutOfRange(f"request {new.id}: {text(reply[1])} cannot be stored")
        return ApprovalRequest.from_redis(fields), True

    async def _transition(self, script: AsyncScript, *, keys: list[str], args: list[Any]) -> Any:
        """Run one Lua script; scripts started together go to Redis in one pipeline."""
        return await self._transitions.get((script, keys, args))

    async def _run_scripts(self, calls: list[_ScriptCall]) -> list[Any]:
        # EVALSHA by hand: redis-py's pipelined Script adds a SCRIPT EXISTS
        # round trip to every pipeline. NOSCRIPT (Redis restarted or was
        # flushed) loads the script and runs those calls again.
        replies = await self._evalsha(calls)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            for script in {calls[i][0].sha: calls[i][0] for i in missing}.values():
                await self.redis.script_load(script.script)
            for i, reply in zip(missing, await self._evalsha([calls[i] for i in missing]), strict=True):
                replies[i] = reply
        return replies

    async def _evalsha(self, calls: list[_ScriptCall]) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for script, script_keys, args in calls:
                pipe.evalsha(script.sha, len(script_keys), *script_keys, *args)
            return await pipe.execute(raise_on_error=False)

    async def latest(self, request_id: str) -> str:
        """The request of the newest call under ``request_id``'s ``tool_use_id``
        (itself, or the request of another input that reused the id)."""
        latest = await self.redis.hget(keys.request(request_id), "latest")
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
            out.append(ApprovalRequest.from_redis(_decoded(raw), _decoded(votes)) if raw else None)
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
        candidates = [{"rule": grant.rule, "by": grant.by} for grant in team]
        reply = await self._transition(
            self._route,
            keys=self._keys(request_id),
            args=[
                request_id,
                repr(now),
                route.rule,
                route.channel,
                " ".join(route.approvers),
                " ".join(route.mention),
                route.required,
                "1" if route.allow_self else "",
                repr(route.timeout),
                route.on_timeout.value,
                json.dumps(escalation),
                repr(route.cost) if route.cost is not None else "",
                repr(route.daily_budget) if route.daily_budget is not None else "",
                keys.spend(route.rule),
                route.mode.value if route.mode else "",
                route.action.value,
                route.message,
                self.today(now),
                json.dumps(candidates),
            ],
        )
        status = text(reply[0])
        if status == "missing":
            return None
        if status == "invalid":
            raise bounds.OutOfRange(f"request {request_id}: the route's {text(reply[1])} cannot be stored")
        if status == "routed":  # this call routed it ("already": another attempt did, and counted it)
            metrics.request_routed(route.rule)
        return State(text(reply[1]))

    async def decide(self, request_id: str, decision: Decision) -> Transition:
        """Apply ``decision`` if the request is still pending.

        A person's decision (``decision.by_person``) must pass the request's
        approver rules, and an approval (or an answer: see DECIDE) counts as
        one vote until enough approvers agree. On success the workers are told to update the Slack
        message and every waiting agent process is woken. The returned
        request is the state after the attempt, so a loser can say who won.
        """
        now = time.time()
        reply = await self._transition(
            self._decide,
            keys=self._keys(request_id),
            args=[
                request_id,
                decision.state.value,
                decision.actor,
                decision.actor_name,
                decision.reason,
                to_json(decision.updated_input) if decision.updated_input is not None else "",
                repr(now),
                decision.audit_event,
                "1" if decision.always else "",
                self.today(now),
                "1" if decision.by_person else "",
                "" if decision.revision is None else str(decision.revision),
                "1" if decision.stop else "",
            ],
        )
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

    async def start_posting(self, request_id: str) -> None:
        """Note that a post is about to be sent (the first attempt's time is kept)."""
        await self._transition(
            self._start_post, keys=self._keys(request_id), args=[request_id, repr(time.time())]
        )

    async def mark_posted(self, request_id: str, channel: str, ts: str, shown: str = "") -> State | None:
        """Record the Slack message of a request (``shown``: what it showed, see
        ``shown``), start its timeout and escalation clocks, and return the request's state now.

        None if the request had a message already (or no longer exists): this
        post is a duplicate.
        """
        reply = await self._transition(
            self._mark_posted,
            keys=self._keys(request_id),
            args=[request_id, channel, ts, repr(time.time()), shown],
        )
        return State(text(reply[1])) if text(reply[0]) == "ok" else None

    async def escalate(self, request_id: str, step: int) -> bool:
        """Fire one due escalation step; False if another worker did, or the request ended."""
        member = keys.escalation_member(request_id, step)
        reply = await self._transition(
            self._escalate, keys=self._keys(request_id), args=[request_id, member, repr(time.time()), step]
        )
        return text(reply[0]) == "escalated"

    async def time_out(self, request_id: str) -> str:
        """Handle a due deadline: ``"escalated"`` (``on_timeout: escalate`` fired),
        ``"expire"`` (the caller expires the request), ``"not_due"`` (rescheduled
        meanwhile) or ``"ended"`` (decided or gone; the deadline is dropped)."""
        reply = await self._transition(
            self._timeout, keys=self._keys(request_id), args=[request_id, repr(time.time())]
        )
        return text(reply[0])

    async def ended(self, request_ids: Iterable[str]) -> set[str]:
        """Which of ``request_ids`` are no longer pending (or no longer exist)."""
        ids = list(request_ids)
        if not ids:
            return set()
        async with self.redis.pipeline(transaction=False) as pipe:
            for request_id in ids:
                pipe.hget(keys.request(request_id), "state")
            states = await pipe.execute()
        return {i for i, s in zip(ids, states, strict=True) if s is None or text(s) != State.PENDING.value}

    async def due(self, now: float, limit: int = 100) -> list[str]:
        """Deadline members that fell due: ``<id>`` (expiry) or ``<id>:esc:<n>`` (escalation)."""
        members = await self.redis.zrangebyscore(keys.DEADLINES, "-inf", now, start=0, num=limit)
        return [text(m) for m in members]

    async def drop_due(self, member: str) -> None:
        """Remove a deadline member that no script can act on."""
        await self.redis.zrem(keys.DEADLINES, member)

    async def pending(self, limit: int = 200) -> list[str]:
        """Ids of pending requests, oldest first."""
        return [text(i) for i in await self.redis.zrange(keys.PENDING, 0, limit - 1)]

    async def decidable_by(self, user: str, request_ids: list[str]) -> list[str]:
        """The pending ids among ``request_ids`` that ``user`` may decide now
        (an approver group not in the cache counts as no)."""
        if not request_ids:
            return []
        verdicts = await self._transition(
            self._may_decide, keys=[keys.request(i) for i in request_ids], args=[user, ""]
        )
        return [i for i, verdict in zip(request_ids, verdicts, strict=True) if text(verdict) == "ok"]

    async def check(self, request_id: str, user: str, *, approving: bool) -> Transition:
        """What ``decide`` would say about ``user``'s decision, without deciding."""
        verdicts = await self._transition(
            self._may_decide, keys=[keys.request(request_id)], args=[user, "1" if approving else ""]
        )
        status, *groups = text(verdicts[0]).split()
        request = await self.get(request_id)
        if status in ("ok", "ended"):
            return Transition(won=False, request=request)
        return Transition(won=False, request=request, refused=Refusal(status), groups=tuple(groups))

    async def add_replies(self, request_id: str, replies: Iterable[Reply]) -> None:
        """Remember thread replies (keyed by ts: a reply seen twice is kept once)."""
        mapping = {reply.ts: reply.to_json() for reply in replies}
        if mapping:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(keys.thread(request_id), mapping=mapping)
                pipe.expire(keys.thread(request_id), keys.RETENTION_SECONDS)
                await pipe.execute()

    async def hold_early_reply(self, channel: str, ts: str, reply: Reply) -> str | None:
        """Keep a reply to a thread no request claims yet, for the post that has not
        recorded its root (``adopt_early_replies``); returns the request if it claimed
        the thread meanwhile (then the caller adds the reply to it)."""
        key = keys.early_replies(channel, ts)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hlen(key)
            pipe.get(keys.thread_root(channel, ts))
            held, claimed = await pipe.execute()
        if claimed is None and int(held) < keys.EARLY_REPLIES_MAX:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(key, reply.ts, reply.to_json())
                pipe.expire(key, keys.EARLY_REPLIES_TTL)
                pipe.get(keys.thread_root(channel, ts))  # again: the post may have recorded it just now
                *_, claimed = await pipe.execute()
        return text(claimed) if claimed is not None else None

    async def adopt_early_replies(self, request_id: str, channel: str, ts: str) -> None:
        """The request's message was recorded as ``channel``/``ts``: replies heard before that are its."""
        key = keys.early_replies(channel, ts)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(key)
            pipe.delete(key)
            held, _ = await pipe.execute()
        await self.add_replies(request_id, [Reply.from_json(text(k), text(v)) for k, v in held.items()])

    async def discussion(self, request_id: str) -> list[Reply]:
        """The human replies in the request's thread, oldest first."""
        raw = await self.redis.hgetall(keys.thread(request_id))
        replies = [Reply.from_json(text(ts), text(value)) for ts, value in raw.items()]
        return sorted(replies, key=lambda r: float(r.ts))

    async def first_delivery(self, event_id: str) -> bool:
        """True the first time an Events API ``event_id`` is seen (Slack retries deliveries)."""
        return bool(
            await self.redis.set(keys.SEEN_EVENTS_PREFIX + event_id, "1", nx=True, ex=keys.SEEN_EVENTS_TTL)
        )

    async def request_for_thread(self, channel: str, ts: str) -> str | None:
        """The request whose message is the root of the thread ``channel``/``ts``."""
        found = await self.redis.get(keys.thread_root(channel, ts))
        return text(found) if found is not None else None

    async def claim_announcement(self, request_id: str) -> bool:
        """True once per request: the caller posts its outcome in the thread."""
        return bool(await self.redis.hsetnx(keys.request(request_id), "announced", "1"))

    async def release_announcement(self, request_id: str) -> None:
        """The announcement failed; let a retry post it."""
        await self.redis.hdel(keys.request(request_id), "announced")

    async def shown(self, request_id: str) -> str:
        """The digest of what the request's Slack message shows now (``""``: not known)."""
        value = await self.redis.hget(keys.request(request_id), "shown")
        return text(value) if value is not None else ""

    async def set_shown(self, request_id: str, digest: str) -> None:
        """Remember what the request's message shows after an update."""
        await self._set_if_exists(keys=[keys.request(request_id)], args=["shown", digest])

    async def lock_render(self, request_id: str, token: str) -> bool:
        """Become the one worker updating the request's message (False: another is)."""
        return bool(
            await self.redis.set(keys.render_lock(request_id), token, nx=True, ex=keys.RENDER_LOCK_TTL)
        )

    async def unlock_render(self, request_id: str, token: str) -> None:
        await self._unlock(keys=[keys.render_lock(request_id)], args=[token])

    async def thread_counts(self, request_id: str) -> tuple[int, int]:
        """Replies heard in the request's thread (``message`` events, and what reads
        found), and how many it held when a worker last read it from Slack: more heard
        than read makes reading it worth a call; none heard, nothing to read at all."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hlen(keys.thread(request_id))
            pipe.get(keys.thread_read(request_id))
            heard, read = await pipe.execute()
        return int(heard), int(text(read) if read is not None else "0")

    async def thread_read(self, request_id: str, replies: int) -> None:
        """The thread was just read from Slack and held ``replies`` people's replies."""
        await self.redis.set(keys.thread_read(request_id), str(replies), ex=keys.RETENTION_SECONDS)

    async def spent(self, rule: str, now: float) -> float:
        """Dollars approved on ``rule``'s route on the budget day of ``now``."""
        value = await self.redis.get(keys.spend(rule, self.today(now)))
        return float(text(value)) if value is not None else 0.0


def _decoded(raw: dict[bytes | str, bytes | str]) -> dict[str, str]:
    return {text(k): text(v) for k, v in raw.items()}
