"""RequestStore: the requests in Redis and their atomic transitions."""

from __future__ import annotations

import time
from collections.abc import Iterable

from redis.asyncio import Redis

from . import keys, scripts
from .codec import pairs, text
from .model import ApprovalRequest, Decision, NewRequest, State, Transition, input_hash, to_json


class RequestStore:
    """Creates, reads and decides approval requests.

    Every change goes through one Lua script, so any number of agent
    processes and bot workers can share one Redis safely: the first
    transition out of ``pending`` wins and later ones learn that they lost.
    """

    def __init__(self, redis: Redis, *, retention: int = keys.RETENTION_SECONDS) -> None:
        self.redis = redis
        self.retention = retention
        self._create = redis.register_script(scripts.CREATE)
        self._decide = redis.register_script(scripts.DECIDE)
        self._mark_posted = redis.register_script(scripts.MARK_POSTED)

    @staticmethod
    def _keys(request_id: str) -> list[str]:
        return [keys.request(request_id), keys.DEADLINES, keys.JOBS, keys.AUDIT]

    async def create(self, new: NewRequest) -> tuple[ApprovalRequest, bool]:
        """Store ``new`` and queue its Slack post, unless it exists already.

        Returns the stored request and whether this call created it. Asking
        twice for the same ``tool_use_id`` returns the first request as it is
        now (pending or decided): no second post.
        """
        now = time.time()
        deadline = now + new.timeout if new.timeout > 0 else 0
        digest = input_hash(new.tool_input)
        fields = {
            "id": new.id,
            "state": State.PENDING.value,
            "tool_name": new.tool_name,
            "tool_input": to_json(new.tool_input),
            "input_hash": digest,
            "created_at": repr(now),
            "tool_use_id": new.tool_use_id or "",
            "agent": new.agent,
            "requested_by": new.requested_by,
            "channel": new.channel,
            "title": new.title,
            "deadline": repr(deadline),
            "suggestions": to_json(new.suggestions),
        }
        flat = [item for pair in fields.items() for item in pair]
        reply = await self._create(
            keys=self._keys(new.id),
            args=[new.id, repr(now), repr(deadline), digest, new.agent or "agent", keys.AUDIT_MAXLEN, *flat],
        )
        status = text(reply[0])
        if status == "exists":
            raw = reply[1:]
            return ApprovalRequest.from_redis(pairs(raw)), False
        return ApprovalRequest.from_redis(fields), True

    async def get(self, request_id: str) -> ApprovalRequest | None:
        raw = await self.redis.hgetall(keys.request(request_id))
        if not raw:
            return None
        return ApprovalRequest.from_redis({text(k): text(v) for k, v in raw.items()})

    async def decide(self, request_id: str, decision: Decision) -> Transition:
        """Apply ``decision`` if the request is still pending.

        On success the workers are told to update the Slack message and every
        waiting agent process is woken. Either way the returned request is
        the state after the attempt, so a loser can say who won.
        """
        reply = await self._decide(
            keys=self._keys(request_id),
            args=[
                request_id,
                decision.state.value,
                decision.actor,
                decision.actor_name,
                decision.reason,
                to_json(decision.updated_input) if decision.updated_input is not None else "",
                repr(time.time()),
                keys.DECISIONS,
                self.retention,
                keys.AUDIT_MAXLEN,
                decision.audit_event,
                "1" if decision.always else "",
            ],
        )
        status = text(reply[0])
        if status == "missing":
            return Transition(won=False, request=None)
        return Transition(won=status == "won", request=await self.get(request_id))

    async def mark_posted(self, request_id: str, channel: str, ts: str) -> State | None:
        """Record the Slack message of a request and return the request's state now.

        None if the request had a message already (or no longer exists): this
        post is a duplicate.
        """
        reply = await self._mark_posted(
            keys=self._keys(request_id),
            args=[request_id, channel, ts, repr(time.time()), keys.AUDIT_MAXLEN],
        )
        return State(text(reply[1])) if text(reply[0]) == "ok" else None

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

    async def forget_deadline(self, request_id: str) -> None:
        """Drop a deadline whose request no longer exists."""
        await self.redis.zrem(keys.DEADLINES, request_id)

    async def due(self, now: float, limit: int = 100) -> list[str]:
        """Ids of pending requests whose deadline has passed."""
        ids = await self.redis.zrangebyscore(keys.DEADLINES, "-inf", now, start=0, num=limit)
        return [text(i) for i in ids]

