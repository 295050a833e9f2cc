"""Verifying one audit chain from its start to its head (``approvals.audit``)."""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import dataclass

from ..redis_client import RedisClient
from .audit_entry import Entry, entry_hash, read_stream
from .codec import text
from .keys import AuditKeys
from .names import AuditEvent


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


async def check_chain(
    redis: RedisClient, chain: AuditKeys, expect: str = "", batch: int = 1000, shard: int = 0
) -> Verdict:
    """Check the chain from its start to its head, and that ``expect`` (a saved head) is in it.

    Passes when the oldest entry is the genesis, or follows the anchor
    that the newest trim recorded; every entry follows the one before it
    unchanged; and the chain reaches the recorded head. Entries written
    while it reads (after the head it read) are left for the next check.
    With ``expect``, the chain must also hold an entry with that hash:
    a chain that grew since the hash was saved passes, a rebuilt one
    does not, nor one trimmed past that entry. ``shard``: the one ``chain`` belongs to.
    """
    # One snapshot of both ends and the oldest entries, so writes and
    # trims running meanwhile cannot look like tampering.
    async with redis.pipeline(transaction=True) as pipe:
        pipe.get(chain.anchor)
        pipe.get(chain.head)
        pipe.xrange(chain.stream, count=batch)
        pipe.xrevrange(chain.stream, count=1)
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

    async with aclosing(read_stream(redis, chain.stream, "-", chunk, batch, shard)) as entries:
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
        return failed(f"the chain's head is missing ({chain.head} was deleted)")
    if not reached:
        return failed("the newest entries were removed (the chain ends before its head)")
    problem = _start_problem(first, anchor, trim, chain)
    if problem:
        return failed(problem)
    if expect and not expected:
        return failed(
            f"the saved hash {expect} is not in the chain: the log was rewritten, or that entry "
            f"was trimmed since (the oldest entry kept is {first.id})"
        )
    return Verdict(True, checked, head, trim=trim, expected=expected)


def _start_problem(first: Entry, anchor: str | None, trim: Entry | None, chain: AuditKeys) -> str:
    """Why ``first`` cannot be the oldest entry of the chain, or ``""``."""
    prev = first.fields.get("prev")
    if anchor is None:
        return (
            f"the chain's anchor is missing ({chain.anchor} was deleted, "
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
