"""JobQueue: the Redis streams of work for bot workers, one per shard, read through a consumer group.

A request's jobs go to its shard's stream (``keys.jobs``), in the slot of its
keys, so the script that changes a request also queues its job. Every worker
reads every shard. A job a worker took but never acknowledged (the worker died)
is claimed by another worker after ``retry_after`` seconds, so nothing stays
stuck. A worker that stops on purpose gives its unfinished jobs back at once
(``release``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from redis.exceptions import ResponseError
from redis.typing import StreamIdT

from ..redis_client import RedisClient
from . import keys
from .codec import text
from .lua.jobs import RELEASE_JOBS
from .names import JobKind

_Entries = list[tuple[bytes, dict[bytes, bytes]]]
"""Stream entries as redis-py returns them (it types them loosely)."""


@dataclass(frozen=True)
class Job:
    shard: int
    """Whose stream holds it (``keys.jobs``)."""
    entry_id: str
    kind: str
    fields: dict[str, str]
    deliveries: int = 1
    """How many times the stream has handed this job out."""

    @property
    def key(self) -> tuple[int, str]:
        """Unique across the shards (entry ids are unique only within one stream)."""
        return self.shard, self.entry_id


class JobQueue:
    def __init__(self, redis: RedisClient, consumer: str, *, retry_after: float) -> None:
        self.redis = redis
        self.consumer = consumer
        self.retry_after_ms = int(retry_after * 1000)
        self._release = redis.register_script(RELEASE_JOBS)

    async def ensure_group(self, shard: int) -> None:
        """Create the workers' group on ``shard``'s stream (and the stream) unless it exists."""
        try:
            await self.redis.xgroup_create(keys.jobs(shard), keys.JOBS_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def notify(self, channel: str, user: str, message: str, *, team: str = "") -> None:
        """Tell ``user`` privately in ``channel`` (of workspace ``team``, in OAuth mode)."""
        fields = {
            "kind": JobKind.NOTIFY.value,
            "channel": channel,
            "user": user,
            "text": message,
            "team": team,
        }
        # Without a team (one bot token) the job is written as it always was.
        # A notice has no request: any shard will do, so spread them by who is told where.
        shard = keys.shard_of(f"{channel}:{user}")
        await self.redis.xadd(keys.jobs(shard), {k: v for k, v in fields.items() if k != "team" or team})

    async def gather(self, request_id: str) -> None:
        shard = keys.shard_of(request_id)
        await self.redis.xadd(keys.jobs(shard), {"kind": JobKind.GATHER.value, "id": request_id})

    async def take(self, shard: int, count: int, block_ms: int) -> list[Job]:
        """New jobs of ``shard`` for this consumer, waiting up to ``block_ms`` for one."""
        reply = cast(
            list[tuple[bytes, _Entries]] | None,
            await self.redis.xreadgroup(
                keys.JOBS_GROUP, self.consumer, {keys.jobs(shard): ">"}, count=count, block=block_ms
            ),
        )
        return [
            _job(shard, entry_id, fields) for _stream, entries in reply or [] for entry_id, fields in entries
        ]

    async def reclaim(self, shard: int, count: int = 50) -> list[Job]:
        """Jobs of ``shard`` other consumers took more than ``retry_after`` ago and never finished."""
        stream = keys.jobs(shard)
        _next, entries, _deleted = await self.redis.xautoclaim(
            stream, keys.JOBS_GROUP, self.consumer, self.retry_after_ms, start_id="0-0", count=count
        )
        if not entries:
            return []
        ids = [text(entry_id) for entry_id, _ in entries]
        pending = await self.redis.xpending_range(
            stream, keys.JOBS_GROUP, min=ids[0], max=ids[-1], count=len(ids) + 100
        )
        deliveries = {text(p["message_id"]): int(p["times_delivered"]) for p in pending}
        return [
            _job(shard, entry_id, fields, deliveries.get(text(entry_id), 1))
            for entry_id, fields in entries
            if fields  # an entry trimmed from the stream comes back empty
        ]

    async def keep(self, jobs: Iterable[tuple[int, str]]) -> None:
        """Still working on these ``Job.key``s (they wait for Slack's budget): reset their
        idle time, so no other worker re-claims them meanwhile (``XCLAIM … JUSTID``
        counts no delivery)."""
        for shard, entry_ids in _by_shard(jobs).items():
            ids: list[StreamIdT] = list(entry_ids)
            await self.redis.xclaim(keys.jobs(shard), keys.JOBS_GROUP, self.consumer, 0, ids, justid=True)

    async def release(self, jobs: Iterable[tuple[int, str]]) -> int:
        """Give back the jobs (``Job.key``s) this worker took and will not finish: others take
        them at once. How many went back."""
        released = 0
        for shard, entry_ids in _by_shard(jobs).items():
            args = [keys.JOBS_GROUP, self.consumer, *entry_ids]
            released += int(await self._release(keys=[keys.jobs(shard)], args=args))
        return released

    async def done(self, job: Job) -> None:
        """Acknowledge and delete: the stream holds only unfinished work."""
        stream = keys.jobs(job.shard)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(stream, keys.JOBS_GROUP, job.entry_id)
            pipe.xdel(stream, job.entry_id)
            await pipe.execute()


async def queued(redis: RedisClient) -> int:
    """Jobs in every shard's stream, taken or not: 0 once the workers have finished all their work."""
    async with redis.pipeline(transaction=False) as pipe:
        for shard in keys.ALL_SHARDS:
            pipe.xlen(keys.jobs(shard))
        return sum(int(length) for length in await pipe.execute())


def _by_shard(jobs: Iterable[tuple[int, str]]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    for shard, entry_id in jobs:
        out[shard].append(entry_id)
    return out


def _job(shard: int, entry_id: bytes, fields: dict[bytes, bytes], deliveries: int = 1) -> Job:
    # Leniently: one entry that is not UTF-8 (anything with REDIS_URL can add
    # one) must not fail the whole read, over and over on every re-claim. It
    # decodes to a kind no worker knows, and is dropped.
    decoded = {_lenient(k): _lenient(v) for k, v in fields.items()}
    return Job(
        shard=shard,
        entry_id=text(entry_id),
        kind=decoded.get("kind", ""),
        fields=decoded,
        deliveries=deliveries,
    )


def _lenient(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
