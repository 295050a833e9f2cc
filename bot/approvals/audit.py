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

The hashes hold no secret. Anyone who can write to Redis can append
well-formed entries, rebuild the whole chain with fresh hashes, drop its
newest entries and move the head back, or pass an early removal of the
oldest entries off as a trim: nothing kept in Redis can tell. A head kept
elsewhere catches the rebuild and the truncation: ``python -m bot audit
--verify`` prints the head, and ``--expect HASH`` later checks that the chain
still holds that entry (``verify(expect=…)``), so nothing up to it changed.
Each trim records the cap it kept to, and ``--verify`` shows the latest one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import cast

from ..redis_client import RedisClient
from . import keys
from .codec import text
from .lua.chain import APPEND_AUDIT
from .names import AuditEvent

_StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]
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
    trim: Entry | None = None
    """The ``trimmed`` entry the oldest kept entry follows; None while the chain starts at its genesis."""
    expected: str = ""
    """The id of the entry whose hash was ``expect``."""


class AuditLog:
    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self._append = redis.register_script(APPEND_AUDIT)

    async def append(self, event: AuditEvent, *, actor: str, request: str = "", **fields: str) -> None:
        """An entry with the core fields every transition writes: event, request, actor, at."""
        if CHAIN_FIELDS[0] in fields or CHAIN_FIELDS[1] in fields:
            raise ValueError(f"{CHAIN_FIELDS} are the chain's own fields")
        flat = [item for pair in fields.items() for item in pair]
        await self._append(
            keys=keys.script_keys(request or "-"),
            args=[request, event, actor, repr(time.time()), *flat],
        )

    async def entries(self, since: float = 0, batch: int = 1000) -> AsyncGenerator[Entry, None]:
        """Every entry from ``since`` (epoch seconds) on, oldest first."""
        start = f"{int(since * 1000)}-0" if since else "-"
        async with aclosing(self._read(start, None, batch)) as entries:
            async for entry in entries:
                yield entry

    async def _read(
        self, start: str, chunk: _StreamEntries | None, batch: int
    ) -> AsyncGenerator[Entry, None]:
        """The entries from ``start`` on, beginning with ``chunk`` when it was read already."""
        while True:
            if chunk is None:
                chunk = cast(
                    _StreamEntries, await self.redis.xrange(keys.AUDIT, min=start, max="+", count=batch)
                )
            for entry_id, raw in chunk:
                yield _entry(entry_id, raw)
            if len(chunk) < batch:
                return
            start = "(" + text(chunk[-1][0])
            chunk = None

    async def recent(
        self, *, actor: str, events: frozenset[AuditEvent], limit: int, scan: int = 5000
    ) -> list[Entry]:
        """The newest entries by ``actor`` among ``events`` (looking at most ``scan`` entries back)."""
        found: list[Entry] = []
        for entry_id, raw in cast(_StreamEntries, await self.redis.xrevrange(keys.AUDIT, count=scan)):
            entry = _entry(entry_id, raw)
            if entry.fields.get("actor") == actor and entry.fields.get("event") in events:
                found.append(entry)
                if len(found) >= limit:
                    break
        return found

    async def verify(self, expect: str = "", batch: int = 1000) -> Verdict:
        """Check the chain from its start to its head, and that ``expect`` (a saved head) is in it.

        Passes when the oldest entry is the genesis, or follows the anchor
        that the newest trim recorded; every entry follows the one before it
        unchanged; and the chain reaches the recorded head. Entries written
        while it reads (after the head it read) are left for the next check.
        With ``expect``, the chain must also hold an entry with that hash:
        a chain that grew since the hash was saved passes, a rebuilt one
        does not, nor one trimmed past that entry.
        """
        # One snapshot of both ends and the oldest entries, so writes and
        # trims running meanwhile cannot look like tampering.
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(keys.AUDIT_ANCHOR)
            pipe.get(keys.AUDIT_HEAD)
            pipe.xrange(keys.AUDIT, count=batch)
            pipe.xrevrange(keys.AUDIT, count=1)
            snapshot = await pipe.execute(raise_on_error=False)
        unreadable = next((reply for reply in snapshot if isinstance(reply, Exception)), None)
        if unreadable is not None:  # e.g. WRONGTYPE: a key replaced by another kind of value
            return Verdict(False, 0, "", f"the audit log's keys cannot be read: {unreadable}")
        anchor_raw, head_raw, chunk, newest = snapshot
        anchor = None if anchor_raw is None else text(anchor_raw)
        head = "" if head_raw is None else text(head_raw)
        last_id = text(newest[0][0]) if newest else ""
        expect = expect.strip().lower()
        first: Entry | None = None
        trim: Entry | None = None
        previous, expected, checked, reached = "", "", 0, False

        def failed(problem: str) -> Verdict:
            return Verdict(False, checked, head, problem)

        async with aclosing(self._read("-", chunk, batch)) as entries:
            async for entry in entries:
                prev, claimed = entry.fields.get("prev"), entry.fields.get("hash")
                if prev is None or claimed is None:
                    return failed(f"entry {entry.id} has no hash: it was not written by this bot")
                if first is None:
                    first = entry
                elif prev != previous:
                    if entry.fields.get("event") == AuditEvent.HEAD_LOST:
                        return failed(
                            f"entry {entry.id}: the chain restarted here because its head was deleted "
                            "from Redis; entries before it may have been removed"
                        )
                    return failed(f"entry {entry.id}: the entry before it was removed or changed")
                if entry_hash(prev, entry.raw) != claimed:
                    return failed(f"entry {entry.id} was changed after it was written")
                if entry.fields.get("event") == AuditEvent.TRIMMED:
                    trim = entry
                if claimed == expect:
                    expected = entry.id
                previous = claimed
                checked += 1
                if claimed == head:
                    reached = True
                    if entry.id != last_id:
                        return failed(
                            f"entries were added after the chain's head (entry {entry.id}), not by the bot"
                        )
                    break
        if first is None:
            if head or anchor is not None:
                return failed("every entry was removed: the log is empty, but its head or anchor remain")
            if expect:
                return failed(f"the saved hash {expect} is not in the chain: the log is empty")
            return Verdict(True, 0, "")
        if not head:
            return failed(f"the chain's head is missing ({keys.AUDIT_HEAD} was deleted)")
        if not reached:
            return failed("the newest entries were removed (the chain ends before its head)")
        problem = _start_problem(first, anchor, trim)
        if problem:
            return failed(problem)
        if expect and not expected:
            return failed(
                f"the saved hash {expect} is not in the chain: the log was rewritten, or that entry "
                f"was trimmed since (the oldest entry kept is {first.id})"
            )
        return Verdict(True, checked, head, trim=trim, expected=expected)


def _start_problem(first: Entry, anchor: str | None, trim: Entry | None) -> str:
    """Why ``first`` cannot be the oldest entry of the chain, or ``""``."""
    prev = first.fields.get("prev")
    if anchor is None:
        return (
            f"the chain's anchor is missing ({keys.AUDIT_ANCHOR} was deleted, "
            "or the log was started by a version of the bot without one)"
        )
    if anchor == "":
        if prev == "" and first.fields.get("event") == AuditEvent.GENESIS:
            return ""
        return f"the oldest entries were removed: the chain starts at entry {first.id}, not at its genesis"
    if prev != anchor:
        return f"the oldest entries were removed: entry {first.id} does not follow the chain's anchor"
    if trim is None or trim.fields.get("last_hash") != anchor or trim.fields.get("kept_from") != first.id:
        return (
            f"the oldest entries were removed: the chain starts at entry {first.id}, but no trim records it"
        )
    return ""


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


def _entry(entry_id: bytes, raw: dict[bytes, bytes]) -> Entry:
    # redis-py returns the fields as a dict, which keeps the stream's order.
    items = [
        (k if isinstance(k, bytes) else str(k).encode(), v if isinstance(v, bytes) else str(v).encode())
        for k, v in raw.items()
    ]
    return Entry(
        id=text(entry_id),
        fields={k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in items},
        raw=items,
    )
