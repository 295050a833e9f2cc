"""Who is in a Slack user group, as cached in Redis (``slack.directory`` fills the cache).

The caches are global keys, one per group, and a script may only touch its
request's slot: so no script reads them. Python reads what a script needs just
before it runs and passes it as ARGV, the JSON of ``memberships``:
``{"S123": ["U1"], "S456": []}``, each approver group whose membership is cached
→ those of the asked users it lists. A group left out is not cached, and the
script refuses it as unknown (``Refusal.UNKNOWN_GROUPS``) exactly as it did when
it read a missing cache itself; the caller then refreshes the group and asks
again once (``slack.deciding``). The approvers of a request only ever grow, so
a group added after the read (an escalation) is left out, hence refused, never
allowed on a stale read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from ..redis_client import RedisClient
from . import keys
from .codec import text
from .model import is_group
from .record import Field


async def memberships(
    redis: RedisClient, groups: Iterable[str], users: Iterable[str]
) -> dict[str, list[str]]:
    """Each of ``groups`` whose membership is cached → those of ``users`` it lists
    (one round trip). A group not cached is left out; targets that are no group are ignored."""
    groups = [group for group in dict.fromkeys(groups) if is_group(group)]
    users = sorted(set(users))
    if not groups:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for group in groups:
            pipe.exists(keys.usergroup(group))
            if users:
                pipe.smismember(keys.usergroup(group), users)
        found = await pipe.execute()
    step = 2 if users else 1
    out: dict[str, list[str]] = {}
    for i, group in enumerate(groups):
        if found[i * step]:
            flags = found[i * step + 1] if users else []
            out[group] = [user for user, member in zip(users, flags, strict=True) if member]
    return out


async def cached_members(redis: RedisClient, groups: Iterable[str], users: Iterable[str]) -> set[str]:
    """Those of ``users`` that the cache lists in any of ``groups`` (one round trip).
    A group not cached lists nobody."""
    return {user for listed in (await memberships(redis, groups, users)).values() for user in listed}


async def for_requests(redis: RedisClient, request_ids: Iterable[str], user: str) -> dict[str, list[str]]:
    """The memberships a script checking ``user`` against the approvers of ``request_ids``
    needs (DECIDE, MAY_DECIDE): their approvers as stored now, then the caches of their
    groups for ``user`` alone (two round trips; none for the caches when no group is
    needed: ``user`` named among a request's approvers may decide it whatever its groups)."""
    ids = list(dict.fromkeys(request_ids))
    if not ids:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for request_id in ids:
            pipe.hget(keys.request(request_id), Field.APPROVERS)
        stored = await pipe.execute()
    named = [text(raw).split() for raw in stored if raw is not None]
    groups = [target for approvers in named if user not in approvers for target in approvers]
    return await memberships(redis, groups, [user])


def as_argv(found: dict[str, list[str]]) -> str:
    """``memberships`` as a script's ARGV (``may_decide`` in ``lua.request``)."""
    return json.dumps(found, separators=(",", ":"), sort_keys=True)
