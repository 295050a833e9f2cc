"""What is still in flight in Redis: pending requests and queued jobs, across the shards and under
the names of the versions before them. ``python -m bot check --drained`` reads it before an upgrade."""

from __future__ import annotations

from dataclasses import dataclass

from ..redis_client import RedisClient
from . import keys
from .queue import queued


@dataclass(frozen=True)
class Backlog:
    pending: int
    """Requests pending now, every shard's."""
    jobs: int
    """Jobs in the streams, taken by a worker or not."""
    legacy_pending: int
    legacy_jobs: int
    """The same under the single pending index and jobs stream of the versions before the shards:
    requests there are not carried over, so an upgrade waits for them to end."""

    @property
    def drained(self) -> bool:
        return not (self.pending or self.jobs or self.legacy_pending or self.legacy_jobs)


async def read_backlog(redis: RedisClient) -> Backlog:
    async with redis.pipeline(transaction=False) as pipe:
        for shard in keys.ALL_SHARDS:
            pipe.zcard(keys.pending(shard))
        pending = sum(int(count) for count in await pipe.execute())
    # On a cluster, the old global keys never held anything (the scripts could not run there).
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.LEGACY_PENDING)
        pipe.xlen(keys.LEGACY_JOBS)
        legacy_pending, legacy_jobs = await pipe.execute()
    return Backlog(pending, await queued(redis), int(legacy_pending), int(legacy_jobs))
