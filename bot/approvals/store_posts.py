"""PostStore: a request's Slack message as the store keeps it (posting, what it shows, who renders it)."""

from __future__ import annotations

import time

from redis.commands.core import AsyncScript

from ..redis_client import RedisClient
from . import keys
from .codec import text
from .lua.runner import ScriptRunner
from .record import FLAG, Field
from .states import State


class PostStore:
    """Part of ``RequestStore``: the fields and keys about the request's message."""

    redis: RedisClient
    _scripts: ScriptRunner
    _start_post: AsyncScript
    _mark_posted: AsyncScript
    _set_if_exists: AsyncScript
    _unlock: AsyncScript

    async def start_posting(self, request_id: str) -> None:
        """Note that a post is about to be sent (the first attempt's time is kept)."""
        await self._scripts.run(
            self._start_post, keys=keys.script_keys(request_id), args=[request_id, repr(time.time())]
        )

    async def mark_posted(self, request_id: str, channel: str, ts: str, shown: str = "") -> State | None:
        """Record the Slack message of a request (``shown``: what it showed, see
        ``shown``), start its timeout and escalation clocks, and return the request's state now.

        None if the request had a message already (or no longer exists): this
        post is a duplicate.
        """
        reply = await self._scripts.run(
            self._mark_posted,
            keys=keys.script_keys(request_id),
            args=[request_id, channel, ts, repr(time.time()), shown],
        )
        return State(text(reply[1])) if text(reply[0]) == "ok" else None

    async def first_delivery(self, event_id: str) -> bool:
        """True the first time an Events API ``event_id`` is seen (Slack retries deliveries)."""
        return bool(
            await self.redis.set(keys.SEEN_EVENTS_PREFIX + event_id, "1", nx=True, ex=keys.SEEN_EVENTS_TTL)
        )

    async def claim_announcement(self, request_id: str) -> bool:
        """True once per request: the caller posts its outcome in the thread."""
        return bool(await self.redis.hsetnx(keys.request(request_id), Field.ANNOUNCED, FLAG))

    async def release_announcement(self, request_id: str) -> None:
        """The announcement failed; let a retry post it."""
        await self.redis.hdel(keys.request(request_id), Field.ANNOUNCED)

    async def shown(self, request_id: str) -> str:
        """The digest of what the request's Slack message shows now (``""``: not known)."""
        value = await self.redis.hget(keys.request(request_id), Field.SHOWN)
        return text(value) if value is not None else ""

    async def set_shown(self, request_id: str, digest: str) -> None:
        """Remember what the request's message shows after an update."""
        await self._set_if_exists(keys=[keys.request(request_id)], args=[Field.SHOWN.value, digest])

    async def lock_render(self, request_id: str, token: str) -> bool:
        """Become the one worker updating the request's message (False: another is)."""
        return bool(
            await self.redis.set(keys.render_lock(request_id), token, nx=True, ex=keys.RENDER_LOCK_TTL)
        )

    async def unlock_render(self, request_id: str, token: str) -> None:
        await self._unlock(keys=[keys.render_lock(request_id)], args=[token])
