"""Audit entries written from Python (transitions write theirs inside their Lua script)."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from . import keys


async def append(redis: Redis, event: str, *, actor: str, request: str = "", **fields: str) -> None:
    """One entry with the same core fields as the scripts write: event, request, actor, at."""
    entry = {"event": event, "request": request, "actor": actor, "at": repr(time.time()), **fields}
    await redis.xadd(keys.AUDIT, entry, maxlen=keys.AUDIT_MAXLEN, approximate=True)
