"""DeadlineStore: the deadlines index of the requests, and what a member that fell due does."""

from __future__ import annotations

import time
from typing import cast

from redis.commands.core import AsyncScript

from ..redis_client import RedisClient
from . import keys
from .codec import text
from .lua.runner import ScriptRunner


class DeadlineStore:
    """Part of ``RequestStore``: expiry and escalation members of each shard's ``keys.deadlines``."""

    redis: RedisClient
    _scripts: ScriptRunner
    _escalate: AsyncScript
    _timeout: AsyncScript

    async def due(self, now: float, limit: int = 100) -> list[tuple[int, str]]:
        """Deadline members that fell due, with their shard: ``<id>`` (expiry) or ``<id>:esc:<n>``
        (escalation); up to ``limit`` of each shard, in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in keys.ALL_SHARDS:
                pipe.zrangebyscore(keys.deadlines(shard), "-inf", now, start=0, num=limit)
            replies = cast(list[list[bytes]], await pipe.execute())
        return [(shard, text(m)) for shard, members in zip(keys.ALL_SHARDS, replies) for m in members]

    async def drop_due(self, shard: int, member: str) -> None:
        """Remove a deadline member that no script can act on."""
        await self.redis.zrem(keys.deadlines(shard), member)

    async def escalate(self, request_id: str, step: int) -> bool:
        """Fire one due escalation step; False if another worker did, or the request ended."""
        member = keys.escalation_member(request_id, step)
        reply = await self._scripts.run(
            self._escalate,
            keys=keys.script_keys(request_id),
            args=[request_id, member, repr(time.time()), step],
        )
        return text(reply[0]) == "escalated"

    async def time_out(self, request_id: str) -> str:
        """Handle a due deadline: ``"escalated"`` (``on_timeout: escalate`` fired),
        ``"expire"`` (the caller expires the request), ``"not_due"`` (rescheduled
        meanwhile) or ``"ended"`` (decided or gone; the deadline is dropped)."""
        reply = await self._scripts.run(
            self._timeout, keys=keys.script_keys(request_id), args=[request_id, repr(time.time())]
        )
        return text(reply[0])
