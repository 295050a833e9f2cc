"""Who is in a Slack user group, as cached in Redis (``slack.directory`` fills the cache).

The DECIDE script reads the same sets in Lua; Python readers come here.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..redis_client import RedisClient
from . import keys


async def cached_members(redis: RedisClient, groups: Iterable[str], users: Iterable[str]) -> set[str]:
    """Those of ``users`` that the cache lists in any of ``groups`` (one round trip).
    A group not cached lists nobody."""
    groups, users = list(dict.fromkeys(groups)), sorted(set(users))
    if not groups or not users:
        return set()
    async with redis.pipeline(transaction=False) as pipe:
        for group in groups:
            pipe.smismember(keys.usergroup(group), users)
        found = await pipe.execute()
    return {user for flags in found for user, member in zip(users, flags, strict=True) if member}
