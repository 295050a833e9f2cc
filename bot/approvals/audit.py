"""The audit log: one Redis stream entry per transition, hash-chained.

Transitions write their entries inside their Lua script (see ``scripts``);
``AuditLog.append`` writes the others through the same chaining code. Each
entry carries ``prev`` (the hash of the entry before it) and ``hash`` (SHA-1
over ``prev`` and every field, length-prefixed), so an entry that was
changed, removed or inserted breaks the chain, and ``AUDIT_HEAD`` holds the
newest hash to compare the end with. Anyone who can write to Redis could
rebuild the whole chain: copy the head hash elsewhere now and then
(``python -m bot audit --verify`` prints it) to anchor it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from redis.asyncio import Redis

from . import keys, scripts
from .codec import text

CHAIN_FIELDS = ("prev", "hash")
"""Fields the chain adds after an entry's own fields."""


@dataclass(frozen=True)
class Entry:
    id: str
    """Stream id: ``<milliseconds>-<sequence>``."""
    fields: dict[str, str]
    """In the order they were written; ``prev`` and ``hash`` last."""
    raw: list[tuple[bytes, bytes]]
    """The fields as stored, for hashing."""

    @property
    def at(self) -> float:
        return float(self.fields.get("at") or int(self.id.split("-")[0]) / 1000)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int
    head: str
    """The newest entry's hash: keep a copy elsewhere to anchor the chain."""
    problem: str = ""


class AuditLog:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._append = redis.register_script(scripts.APPEND_AUDIT)

    async def append(self, event: str, *, actor: str, request: str = "", **fields: str) -> None:
        """An entry with the core fields every transition writes: event, request, actor, at."""
        flat = [item for pair in fields.items() for item in pair]
        await self._append(
            keys=[keys.request(request or "-"), keys.DEADLINES, keys.JOBS, keys.AUDIT, keys.AUDIT_HEAD],
            args=[request, event, actor, repr(time.time()), *flat],
        )

    async def entries(self, since: float = 0, batch: int = 1000) -> AsyncIterator[Entry]:
        """Every entry from ``since`` (epoch seconds) on, oldest first."""
        start = f"{int(since * 1000)}-0" if since else "-"
        while True:
            chunk = await self.redis.xrange(keys.AUDIT, min=start, max="+", count=batch)
            for entry_id, raw in chunk:
                yield _entry(entry_id, raw)
            if len(chunk) < batch:
                return
            last = text(chunk[-1][0])
            start = "(" + last

    async def recent(self, *, actor: str, events: frozenset[str], limit: int, scan: int = 5000) -> list[Entry]:
        """The newest entries by ``actor`` among ``events`` (looking at most ``scan`` entries back)."""
        found: list[Entry] = []
        for entry_id, raw in await self.redis.xrevrange(keys.AUDIT, count=scan):
            entry = _entry(entry_id, raw)
            if entry.fields.get("actor") == actor and entry.fields.get("event") in events:
                found.append(entry)
                if len(found) >= limit:
                    break
        return found

    async def verify(self) -> Verdict:
        """Check every link of the chain, and that its end is the recorded head."""
        previous: str | None = None
        checked = 0
        async for entry in self.entries():
            prev, claimed = entry.fields.get("prev"), entry.fields.get("hash")
            if prev is None or claimed is None:
                return Verdict(False, checked, "", f"entry {entry.id} has no hash: it was not written by this bot")
            if previous is not None and prev != previous:
                return Verdict(False, checked, "", f"entry {entry.id}: the entry before it was removed or changed")
            if entry_hash(prev, entry.raw) != claimed:
                return Verdict(False, checked, "", f"entry {entry.id} was changed after it was written")
            previous = claimed
            checked += 1
        head = await self.redis.get(keys.AUDIT_HEAD)
        head_hash = text(head) if head is not None else ""
        if (previous or "") != head_hash:
            return Verdict(False, checked, head_hash, "the newest entries were removed (the chain ends before its head)")
        return Verdict(True, checked, head_hash)


def entry_hash(prev: str, raw: list[tuple[bytes, bytes]]) -> str:
    """What the Lua ``chain`` function computes for an entry's own fields."""
    parts = []
    for name, value in raw:
        if text(name) in CHAIN_FIELDS:
            continue
        for item in (name, value):
            data = item if isinstance(item, bytes) else str(item).encode()
            parts.append(b"%d:%s" % (len(data), data))
    return hashlib.sha1(prev.encode() + b"|" + b"".join(parts), usedforsecurity=False).hexdigest()


def _entry(entry_id: bytes | str, raw: dict[bytes, bytes]) -> Entry:
    # redis-py returns the fields as a dict, which keeps the stream's order.
    items = [(k if isinstance(k, bytes) else str(k).encode(), v if isinstance(v, bytes) else str(v).encode()) for k, v in raw.items()]
    return Entry(
        id=text(entry_id),
        fields={k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in items},
        raw=items,
    )
