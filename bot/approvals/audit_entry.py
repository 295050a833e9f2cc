"""One audit entry as read from a chain's stream, and the hash that links it (``approvals.audit``)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import cast

from ..redis_client import RedisClient
from .codec import text

StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]
"""What XRANGE and XREVRANGE return (redis-py types it loosely)."""

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
    shard: int = 0
    """The shard whose chain holds it (``keys.audit``)."""

    @property
    def at(self) -> float:
        return float(self.fields.get("at") or int(self.id.split("-")[0]) / 1000)

    @property
    def order(self) -> tuple[int, int, int]:
        """Where it sits among the entries of every shard: by time (the stream id's), then shard."""
        ms, _, seq = self.id.partition("-")
        return int(ms), self.shard, int(seq or 0)


async def read_stream(
    redis: RedisClient, stream: str, start: str, chunk: StreamEntries | None, batch: int, shard: int = 0
) -> AsyncGenerator[Entry, None]:
    """The entries of ``stream`` from ``start`` on, beginning with ``chunk`` when it was read already."""
    while True:
        if chunk is None:
            chunk = cast(StreamEntries, await redis.xrange(stream, min=start, max="+", count=batch))
        for entry_id, raw in chunk:
            yield parse_entry(entry_id, raw, shard)
        if len(chunk) < batch:
            return
        start = "(" + text(chunk[-1][0])
        chunk = None


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


def parse_entry(entry_id: bytes, raw: dict[bytes, bytes], shard: int = 0) -> Entry:
    # redis-py returns the fields as a dict, which keeps the stream's order.
    items = [
        (k if isinstance(k, bytes) else str(k).encode(), v if isinstance(v, bytes) else str(v).encode())
        for k, v in raw.items()
    ]
    return Entry(
        id=text(entry_id),
        fields={k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in items},
        raw=items,
        shard=shard,
    )
