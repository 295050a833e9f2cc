"""``python -m bot audit --verify``: what the check of the audit chain reports."""

from __future__ import annotations

from .notation import utc


def audit_verified(checked: int, head: str) -> str:
    """The first line of a passed ``audit --verify``: the head, to save outside Redis."""
    return f"ok: {checked} entries, chain intact; head {head or '(empty log)'}"


AUDIT_FROM_GENESIS = "the chain starts at its genesis: no entry was ever trimmed"


def audit_from_trim(trim_id: str, at: float, removed: str, last_id: str, cap: str) -> str:
    """Where a trimmed chain starts: the ``trimmed`` entry the oldest kept entry follows."""
    return (
        f"older entries were trimmed: the latest trim, entry {trim_id} at {utc(at)}, "
        f"removed {removed} entries up to entry {last_id} (cap {cap} entries)"
    )


def audit_expected(entry_id: str) -> str:
    return f"the saved head is entry {entry_id}: nothing up to it changed since it was saved"


def audit_failed(problem: str, checked: int) -> str:
    return f"FAIL: {problem} ({checked} entries checked before it)"


def audit_shard(shard: int) -> str:
    """What starts a shard's lines in ``audit --verify``."""
    return f"shard {shard}: "


AUDIT_EXPECT_ALONE = "--expect is used with --verify"


def audit_bad_expect(value: str) -> str:
    return (
        f"--expect {value!r}: expected SHARD:HASH, a shard number and the 40-character head hash "
        "that `audit --verify` prints for it, once per shard"
    )


def audit_bad_legacy_expect(value: str) -> str:
    return f"--expect {value!r}: expected the 40-character head hash that `audit --verify --legacy` prints"
