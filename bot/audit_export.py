"""``python -m bot audit``: export the audit log, or verify its hash chain."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from typing import TextIO

from . import text
from .approvals import keys
from .approvals.audit import AuditLog, Entry, Verdict
from .approvals.policy_values import parse_duration
from .redis_client import RedisClient

FORMATS = ("jsonl", "csv")
CSV_COLUMNS = (
    "id",
    "shard",
    "time",
    "event",
    "request",
    "actor",
    "state",
    "input_hash",
    "reason",
    "details",
    "prev",
    "hash",
)
"""``details`` holds every other field of the entry as JSON."""
HEAD_HASH = re.compile(r"[0-9a-fA-F]{40}")
"""What ``verify`` prints as the head: a SHA-1 in hex (``redis.sha1hex``)."""


def is_head_hash(value: str) -> bool:
    """Whether ``value`` can be a head hash (``audit --verify --legacy --expect``)."""
    return HEAD_HASH.fullmatch(value.strip()) is not None


def parse_expect(values: list[str]) -> dict[int, str]:
    """``--expect N:HASH`` (repeatable): shard → the head saved for it. ValueError names a bad one."""
    saved: dict[int, str] = {}
    for value in values:
        shard, _, head = value.strip().partition(":")
        if not (shard.isdigit() and int(shard) < keys.SHARDS and is_head_hash(head)) or int(shard) in saved:
            raise ValueError(text.audit.audit_bad_expect(value))
        saved[int(shard)] = head
    return saved


def verified(verdict: Verdict) -> str:
    """What ``audit --verify`` prints for a chain that passed: its head, where it starts, the saved head."""
    lines = [text.audit.audit_verified(verdict.checked, verdict.head)]
    if verdict.trim is not None:
        fields = verdict.trim.fields
        lines.append(
            text.audit.audit_from_trim(
                verdict.trim.id,
                verdict.trim.at,
                fields.get("removed", "?"),
                fields.get("last_id", "?"),
                fields.get("cap", "?"),
            )
        )
    elif verdict.checked:
        lines.append(text.audit.AUDIT_FROM_GENESIS)
    if verdict.expected:
        lines.append(text.audit.audit_expected(verdict.expected))
    return "\n".join(lines)


def verified_all(verdicts: list[Verdict]) -> str:
    """What ``audit --verify`` prints for the shards' chains: per shard, its verdict (a head
    to save, or the problem that names where the chain broke)."""
    lines = []
    for shard, verdict in enumerate(verdicts):
        shown = verified(verdict) if verdict.ok else text.audit.audit_failed(verdict.problem, verdict.checked)
        first, *rest = shown.split("\n")
        lines.append(f"{text.audit.audit_shard(shard)}{first}")
        lines.extend(f"  {line}" for line in rest)
    return "\n".join(lines)


def parse_since(value: str, now: float) -> float:
    """``2026-11-01``, ``2026-11-01T09:30`` (UTC unless an offset is given) or ``24h``/``7d`` ago."""
    try:
        return now - parse_duration(value)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"--since {value!r}: expected a date, a date and time, or a duration such as 24h or 7d"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _row(entry: Entry, legacy: bool) -> dict[str, str]:
    fields = dict(entry.fields)
    row = {"id": entry.id, "shard": "" if legacy else str(entry.shard)}
    row["time"] = dt.datetime.fromtimestamp(entry.at, dt.UTC).isoformat()
    for column in CSV_COLUMNS[3:9]:
        row[column] = fields.pop(column, "")
    row["prev"], row["hash"] = fields.pop("prev", ""), fields.pop("hash", "")
    fields.pop("at", None)
    row["details"] = json.dumps(fields, ensure_ascii=False, sort_keys=True) if fields else ""
    return row


async def export(
    redis: RedisClient, out: TextIO, *, since: float = 0, fmt: str = "jsonl", legacy: bool = False
) -> int:
    """Write every entry from ``since`` on, every shard's merged (``AuditLog.entries``; ``legacy``:
    the chain of older versions); returns how many."""
    count = 0
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    async for entry in AuditLog(redis).entries(since, legacy=legacy):
        if writer is not None:
            writer.writerow(_row(entry, legacy))
        else:
            # Every stored field, in order, so an export can be re-verified.
            # The shard names the chain it verifies in.
            line = {"id": entry.id, **({} if legacy else {"shard": entry.shard}), **entry.fields}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
        count += 1
    return count
