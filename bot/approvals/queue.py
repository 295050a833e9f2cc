"""JobQueue: the Redis stream of work for bot workers, read through a consumer group.

A job a worker took but never acknowledged (the worker died) is claimed by
another worker after ``retry_after`` seconds, so nothing stays stuck. A worker
that stops on purpose gives its unfinished jobs back at once (``release``).
"""

from __future__ import annotations

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
    entry_id: str
    kind: str
    fields: dict[str, str]
    deliveries: int = 1
    """How many times the stream has handed this job out."""


class JobQueue:
    def __init__(self, redis: RedisClient, consumer: str, *, retry_after: float) -> None:
        self.redis = redis
        self.consumer = consumer
        self.retry_after_ms = int(retry_after * 1000)
        self._release = redis.register_script(RELEASE_JOBS)

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(keys.JOBS, keys.JOBS_GROUP, id="0", mkstream=True)
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
        await self.redis.xadd(keys.JOBS, {k: v for k, v in fields.items() if k != "team" or team})

    async def gather(self, request_id: str) -> None:
        await self.redis.xadd(keys.JOBS, {"kind": JobKind.GATHER.value, "id": request_id})

    async def take(self, count: int, block_ms: int) -> list[Job]:
        """New jobs for this consumer, waiting up to ``block_ms`` for one."""
        reply = cast(
            list[tuple[bytes, _Entries]] | None,
            await self.redis.xreadgroup(
                keys.JOBS_GROUP, self.consumer, {keys.JOBS: ">"}, count=count, block=block_ms
            ),
        )
        return [_job(entry_id, fields) for _stream, entries in reply or [] for entry_id, fields in entries]

    async def reclaim(self, count: int = 50) -> list[Job]:
        """Jobs other consumers took more than ``retry_after`` ago and never finished."""
        _next, entries, _deleted = await self.redis.xautoclaim(
            keys.JOBS, keys.JOBS_GROUP, self.consumer, self.retry_after_ms, start_id="0-0", count=count
        )
        if not entries:
            return []
        ids = [text(entry_id) for entry_id, _ in entries]
        pending = await self.redis.xpending_range(
            keys.JOBS, keys.JOBS_GROUP, min=ids[0], max=ids[-1], count=len(ids) + 100
        )
        deliveries = {text(p["message_id"]): int(p["times_delivered"]) for p in pending}
        return [
            _job(entry_id, fields, deliveries.get(text(entry_id), 1))
            for entry_id, fields in entries
            if fields  # an entry trimmed from the stream comes back empty
        ]

    async def keep(self, entry_ids: list[str]) -> None:
        """Still working on these (they wait for Slack's budget): reset their idle
        time, so no other worker re-claims them meanwhile (``XCLAIM … JUSTID``
        counts no delivery)."""
        if entry_ids:
            ids: list[StreamIdT] = list(entry_ids)
            await self.redis.xclaim(keys.JOBS, keys.JOBS_GROUP, self.consumer, 0, ids, justid=True)

    async def release(self, entry_ids: list[str]) -> int:
        """Give back jobs this worker took and will not finish: others take them at once. How many went back."""
        if not entry_ids:
            return 0
        return int(await self._release(keys=[keys.JOBS], args=[keys.JOBS_GROUP, self.consumer, *entry_ids]))

    async def done(self, job: Job) -> None:
        """Acknowledge and delete: the stream holds only unfinished work."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(keys.JOBS, keys.JOBS_GROUP, job.entry_id)
            pipe.xdel(keys.JOBS, job.entry_id)
            await pipe.execute()


def _job(entry_id: bytes, fields: dict[bytes, bytes], deliveries: int = 1) -> Job:
    # Leniently: one entry that is not UTF-8 (anything with REDIS_URL can add
    # one) must not fail the whole read, over and over on every re-claim. It
    # decodes to a kind no worker knows, and is dropped.
    decoded = {_lenient(k): _lenient(v) for k, v in fields.items()}
    return Job(entry_id=text(entry_id), kind=decoded.get("kind", ""), fields=decoded, deliveries=deliveries)


def _lenient(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
