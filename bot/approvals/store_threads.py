"""ThreadStore: the people's replies in a request's Slack thread, as the store keeps them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from redis.typing import EncodableT, FieldT

from ..redis_client import RedisClient
from . import keys
from .codec import text
from .model import Reply


class ThreadStore:
    """Part of ``RequestStore``: the thread's replies, early ones included, and how many were read."""

    redis: RedisClient

    async def add_replies(self, request_id: str, replies: Iterable[Reply]) -> None:
        """Remember thread replies (keyed by ts: a reply seen twice is kept once)."""
        mapping: dict[FieldT, EncodableT] = {reply.ts: reply.to_json() for reply in replies}
        if mapping:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(keys.thread(request_id), mapping=mapping)
                pipe.expire(keys.thread(request_id), keys.RETENTION_SECONDS)
                await pipe.execute()

    async def link_thread(self, request_id: str, channel: str, ts: str) -> None:
        """The request's message was recorded as ``channel``/``ts``: make it the root of
        that thread, and adopt the replies heard before (``hold_early_reply``).

        Idempotent: run after ``mark_posted`` succeeds, and again by any attempt that
        finds the message recorded (a worker may have died in between). The root and
        the held replies share the thread's tag: one MULTI sets the one and reads the
        other, so a reply held concurrently is either read here or sees the root."""
        root, early = keys.thread_root(channel, ts), keys.early_replies(channel, ts)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(root, request_id, ex=keys.RETENTION_SECONDS)
            pipe.hgetall(early)
            _, held = await pipe.execute()
        if held:
            await self.add_replies(request_id, [Reply.from_json(text(k), text(v)) for k, v in held.items()])
            # Only once they are the request's: a crash before leaves them to the next link.
            await self.redis.delete(early)

    async def hold_early_reply(self, channel: str, ts: str, reply: Reply) -> str | None:
        """Keep a reply to a thread no request claims yet, for the post that has not
        linked its root (``link_thread``); returns the request if it claimed the thread
        meanwhile (then the caller adds the reply to it).

        One MULTI over the thread's two keys (one slot): the reply is held before the
        root is read again, so a link running at the same time either adopts it or is
        seen here."""
        key = keys.early_replies(channel, ts)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hlen(key)
            pipe.hsetnx(key, reply.ts, reply.to_json())
            pipe.expire(key, keys.EARLY_REPLIES_TTL)
            pipe.get(keys.thread_root(channel, ts))
            held, added, _, claimed = await pipe.execute()
        if claimed is not None:
            return text(claimed)
        if added and int(held) >= keys.EARLY_REPLIES_MAX:
            await self.redis.hdel(key, reply.ts)  # a thread under some other message: keep the first few
        return None

    async def discussion(self, request_id: str) -> list[Reply]:
        """The human replies in the request's thread, oldest first."""
        raw = cast(dict[bytes, bytes], await self.redis.hgetall(keys.thread(request_id)))
        replies = [Reply.from_json(text(ts), text(value)) for ts, value in raw.items()]
        return sorted(replies, key=lambda r: float(r.ts))

    async def request_for_thread(self, channel: str, ts: str) -> str | None:
        """The request whose message is the root of the thread ``channel``/``ts``."""
        found = await self.redis.get(keys.thread_root(channel, ts))
        return text(found) if found is not None else None

    async def thread_counts(self, request_id: str) -> tuple[int, int]:
        """Replies heard in the request's thread (``message`` events, and what reads
        found), and how many it held when a worker last read it from Slack: more heard
        than read makes reading it worth a call; none heard, nothing to read at all."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hlen(keys.thread(request_id))
            pipe.get(keys.thread_read(request_id))
            heard, read = await pipe.execute()
        return int(heard), int(text(read) if read is not None else "0")

    async def thread_read(self, request_id: str, replies: int) -> None:
        """The thread was just read from Slack and held ``replies`` people's replies."""
        await self.redis.set(keys.thread_read(request_id), str(replies), ex=keys.RETENTION_SECONDS)
