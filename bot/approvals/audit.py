"""The audit log: one Redis stream entry per transition, hash-chained.

Transitions write their entries inside their Lua script (see ``approvals.lua``);
``AuditLog.append`` writes the others through the same chaining code. Each
entry carries ``prev`` (the hash of the entry before it) and ``hash`` (SHA-1
over ``prev`` and every field, length-prefixed), so an entry that was
changed, removed or inserted breaks the chain. Both ends are recorded:
``AUDIT_HEAD`` holds the newest hash, and the chain's start is explicit. The
first entry ever written is a ``genesis`` (``prev`` empty), and old entries
only leave through a trim (past ``AUDIT_MAXLEN``) that writes a ``trimmed``
entry into the chain naming what it removed, and moves ``AUDIT_ANCHOR`` to
the ``prev`` the oldest kept entry must have. So removing entries at the
start, in the middle or at the end fails ``verify``.

There is one chain per shard (``keys.audit``): a request's transitions go to
its shard's chain, written by its scripts in the shard's slot, and so does an
entry ``append`` writes about a request; the others go to shard 0. Each chain
verifies on its own (``verify``, ``verify_all``); reading merges them by time,
then shard.

The hashes hold no secret. Anyone who can write to Redis can append
well-formed entries, rebuild the whole chain with fresh hashes, drop its
newest entries and move the head back, or pass an early removal of the
oldest entries off as a trim: nothing kept in Redis can tell. A head kept
elsewhere catches the rebuild and the truncation: ``python -m bot audit
--verify`` prints each shard's head, and ``--expect N:HASH`` later checks that
shard N's chain still holds that entry (``verify(N, expect=…)``), so nothing up
to it changed.
Each trim records the cap it kept to, and ``--verify`` shows the latest one.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import cast

from ..redis_client import RedisClient
from . import keys
from .audit_check import Verdict, check_chain
from .audit_entry import CHAIN_FIELDS, Entry, StreamEntries, entry_hash, parse_entry, read_stream
from .lua.chain import APPEND_AUDIT
from .names import AuditEvent

__all__ = ["AuditLog", "Entry", "Verdict", "entry_hash"]


class AuditLog:
    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self._append = redis.register_script(APPEND_AUDIT)

    async def append(self, event: AuditEvent, *, actor: str, request: str = "", **fields: str) -> None:
        """An entry with the core fields every transition writes: event, request, actor, at.

        Chained in the shard of ``request``, with that request's transitions; without one,
        in ``keys.AUDIT_SHARD_DEFAULT``'s."""
        if CHAIN_FIELDS[0] in fields or CHAIN_FIELDS[1] in fields:
            raise ValueError(f"{CHAIN_FIELDS} are the chain's own fields")
        flat = [item for pair in fields.items() for item in pair]
        shard = keys.shard_of(request) if request else keys.AUDIT_SHARD_DEFAULT
        await self._append(
            keys=keys.audit_script_keys(shard),
            args=[request, event, actor, repr(time.time()), *flat],
        )

    async def entries(
        self, since: float = 0, batch: int = 1000, *, legacy: bool = False
    ) -> AsyncGenerator[Entry, None]:
        """Every entry from ``since`` (epoch seconds) on, oldest first: the shards' chains merged
        by time, then shard (``Entry.order``). ``legacy``: the single chain of older versions instead."""
        start = f"{int(since * 1000)}-0" if since else "-"
        if legacy:
            readers = [read_stream(self.redis, keys.LEGACY_AUDIT.stream, start, None, batch)]
        else:
            readers = [
                read_stream(self.redis, keys.audit(shard).stream, start, None, batch, shard)
                for shard in range(keys.SHARDS)
            ]
        try:
            async with aclosing(_merged(readers)) as merged:
                async for entry in merged:
                    yield entry
        finally:
            for reader in readers:
                await reader.aclose()

    async def recent(
        self, *, actor: str, events: frozenset[AuditEvent], limit: int, scan: int = 5000
    ) -> list[Entry]:
        """The newest entries by ``actor`` among ``events``, newest first (looking at most ``scan``
        entries back in all, spread over the shards: requests are spread evenly over them)."""
        per_shard = -(-scan // keys.SHARDS)
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in range(keys.SHARDS):
                pipe.xrevrange(keys.audit(shard).stream, count=per_shard)
            replies = cast(list[StreamEntries], await pipe.execute())
        found = [
            entry
            for shard, reply in enumerate(replies)
            for entry in (parse_entry(entry_id, raw, shard) for entry_id, raw in reply)
            if entry.fields.get("actor") == actor and entry.fields.get("event") in events
        ]
        return heapq.nlargest(limit, found, key=lambda entry: entry.order)

    async def verify(self, shard: int, expect: str = "", batch: int = 1000) -> Verdict:
        """Check one shard's chain from its start to its head, and that ``expect`` (a head of it
        saved earlier) is in it (``audit_check.check_chain``)."""
        return await check_chain(self.redis, keys.audit(shard), expect, batch, shard)

    async def verify_all(self, expect: dict[int, str] | None = None) -> list[Verdict]:
        """Every shard's verdict, in shard order; ``expect`` maps a shard to its saved head."""
        expect = expect or {}
        return [await self.verify(shard, expect.get(shard, "")) for shard in range(keys.SHARDS)]

    async def verify_legacy(self, expect: str = "") -> Verdict:
        """Check the single chain of the versions before the shards (``keys.LEGACY_AUDIT``)."""
        return await check_chain(self.redis, keys.LEGACY_AUDIT, expect)


async def _merged(readers: list[AsyncGenerator[Entry, None]]) -> AsyncGenerator[Entry, None]:
    """The entries of several chains, each oldest first, merged in ``Entry.order``."""
    heap: list[tuple[tuple[int, int, int], int, Entry]] = []
    for index, reader in enumerate(readers):
        first = await anext(reader, None)
        if first is not None:
            heap.append((first.order, index, first))
    heapq.heapify(heap)
    while heap:
        _order, index, entry = heap[0]
        yield entry
        following = await anext(readers[index], None)
        if following is None:
            heapq.heappop(heap)
        else:
            heapq.heapreplace(heap, (following.order, index, following))
