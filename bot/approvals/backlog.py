"""What is in flight in Redis, shard by shard: pending requests and the jobs streams.

The metrics read it at each scrape; ``python -m bot check --drained`` reads it
(with the single pending index and jobs stream of the versions before the
shards) before an upgrade.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from redis.exceptions import RedisError

from ..redis_client import RedisClient
from . import keys
from .codec import text


@dataclass(frozen=True)
class ShardBacklog:
    pending: int
    """Requests of the shard pending now."""
    oldest: float | None
    """When its oldest pending request was created (None: none is)."""
    routes: dict[str, int]
    """Rule name → its requests pending on that route (``""``: not routed yet), as the scripts count."""
    jobs: int
    """Entries in its jobs stream, taken or not."""
    lag: int
    """Jobs no worker has taken yet (the consumer group's lag)."""
    taken: int
    """Jobs taken and not acknowledged yet (the group's PEL)."""


async def read_shards(redis: RedisClient) -> list[ShardBacklog]:
    """Each shard's backlog, in two pipelines (split per node on a cluster): O(1) or O(routes) each."""
    async with redis.pipeline(transaction=False) as pipe:
        for shard in keys.ALL_SHARDS:
            pipe.zcard(keys.pending(shard))
            pipe.zrange(keys.pending(shard), 0, 0, withscores=True)
            pipe.hgetall(keys.pending_routes(shard))
            pipe.xlen(keys.jobs(shard))
        replies = await pipe.execute()
    async with redis.pipeline(transaction=False) as pipe:
        for shard in keys.ALL_SHARDS:
            pipe.xinfo_groups(keys.jobs(shard))
        groups = await pipe.execute(raise_on_error=False)
    out = []
    for shard in keys.ALL_SHARDS:
        pending, oldest, routes, jobs = replies[4 * shard : 4 * shard + 4]
        lag, taken = _group(groups[shard])
        created = float(oldest[0][1]) if oldest else None
        out.append(ShardBacklog(int(pending), created, _counts(routes), int(jobs), lag, taken))
    return out


@dataclass(frozen=True)
class Legacy:
    """The single pending index and jobs stream of the versions before the shards: requests there are
    not carried over, so an upgrade waits for them to end."""

    pending: int
    jobs: int


async def read_legacy(redis: RedisClient) -> Legacy:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.LEGACY_PENDING)
        pipe.xlen(keys.LEGACY_JOBS)
        pending, jobs = await pipe.execute()
    return Legacy(int(pending), int(jobs))


def _group(reply: object) -> tuple[int, int]:
    """(lag, pending) of the workers' consumer group; zeros before any worker made it
    (XINFO GROUPS of a stream not made yet answers "no such key")."""
    if isinstance(reply, RedisError):
        if "no such key" in str(reply).lower():
            return 0, 0
        raise reply
    for group in cast(list[dict[str, object]], reply):
        if text(cast(bytes | str, group.get("name", ""))) == keys.JOBS_GROUP:
            # lag is nil when Redis cannot tell (entries deleted mid-stream): the stream length bounds it.
            return int(cast(int, group.get("lag") or 0)), int(cast(int, group.get("pending") or 0))
    return 0, 0


def _counts(raw: dict[bytes | str, bytes | str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for field, value in raw.items():
        try:
            out[text(field)] = max(0, int(value))
        except ValueError:
            continue  # not the scripts' count: never fail a scrape over it
    return out
