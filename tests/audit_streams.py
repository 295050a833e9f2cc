"""Reading every shard's audit chain at once, as the tests that look at the whole log need."""

from __future__ import annotations

from bot.approvals import keys


async def audit_stream(redis) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Every shard's entries as XRANGE returns them, merged by time, then shard (as ``AuditLog.entries``)."""
    merged = []
    for shard in range(keys.SHARDS):
        for entry_id, fields in await redis.xrange(keys.audit(shard).stream):
            ms, _, seq = entry_id.decode().partition("-")
            merged.append(((int(ms), shard, int(seq)), entry_id, fields))
    return [(entry_id, fields) for _order, entry_id, fields in sorted(merged, key=lambda item: item[0])]


async def audit_length(redis) -> int:
    """Entries kept over every shard's chain."""
    return sum([await redis.xlen(keys.audit(shard).stream) for shard in range(keys.SHARDS)])
