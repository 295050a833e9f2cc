"""Every Redis key, stream, channel and TTL the project uses, in one place.

Keys of one request share the hash tag ``{<id>}`` so that, should a later
version shard requests, the keys of one request stay in one slot. The global
keys (jobs, deadlines, audit, the decisions channel) are touched by the same
scripts, so today the project needs a single Redis primary (replicas and
Sentinel are fine; Redis Cluster is not supported).
"""

PREFIX = "appr"

JOBS = f"{PREFIX}:jobs"
"""Stream of work for the bot workers (post / update / notify)."""
JOBS_GROUP = "workers"
"""Consumer group every bot worker reads ``JOBS`` through."""

DEADLINES = f"{PREFIX}:deadlines"
"""Sorted set: request id scored by the epoch second it expires."""

AUDIT = f"{PREFIX}:audit"
"""Stream: one entry per transition."""
AUDIT_MAXLEN = 1_000_000
"""Approximate cap on the audit stream (XADD MAXLEN ~)."""

DECISIONS = f"{PREFIX}:decided"
"""Pub/sub channel: the id of every request that reached a final state."""

TEAM_RULES = f"{PREFIX}:rules"
"""Hash: rule id → the team allow-list entry (rule, who added it, when)."""

RETENTION_SECONDS = 30 * 86400
"""How long an ended request stays readable (late clicks, re-asks, audit)."""


def request(request_id: str) -> str:
    """The hash holding one request."""
    return f"{PREFIX}:{{{request_id}}}:req"
