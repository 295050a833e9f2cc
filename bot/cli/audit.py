"""``python -m bot audit``: export the audit log, or verify its hash chain."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from .. import audit_export
from ..redis_client import CLI_CLIENT_NAME, connect
from ..settings import Settings
from .common import EXIT_CONFIG, Subcommands, with_settings


def add_parser(commands: Subcommands) -> None:
    audit = commands.add_parser(
        "audit", help="export the audit log (needs only REDIS_URL), or verify its hash chain"
    )
    audit.add_argument(
        "--since", help="from this date/time (UTC unless it has an offset) or this long ago (24h, 7d)"
    )
    audit.add_argument(
        "--format", choices=audit_export.FORMATS, default="jsonl", help="output format (default jsonl)"
    )
    audit.add_argument(
        "--verify",
        action="store_true",
        help="check that no entry was changed or removed in each shard's chain; "
        "prints each shard's head hash to save elsewhere",
    )
    audit.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="SHARD:HASH",
        help="with --verify: fail unless that shard's chain holds this hash (a head saved outside Redis); "
        "once per shard. With --legacy: the HASH alone",
    )
    audit.add_argument(
        "--legacy",
        action="store_true",
        help="export or verify the single chain that versions before the shards wrote (appr:audit)",
    )
    audit.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return with_settings(
        lambda settings: asyncio.run(
            audit_command(settings, args.since, args.format, args.verify, args.expect, args.legacy)
        )
    )


async def audit_command(
    settings: Settings,
    since: str | None,
    fmt: str,
    verify: bool,
    expect: list[str] | None = None,
    legacy: bool = False,
) -> int:
    """Export to stdout (exit 0), or verify: exit 1 if a shard's chain (``legacy``: the old single
    chain) is broken or lacks its ``expect``ed head.

    Exit 2 for a setting or an argument that cannot be used.
    """
    from .. import text
    from ..approvals.audit import AuditLog

    redis_url = settings.required("redis_url")
    try:
        start = audit_export.parse_since(since, time.time()) if since else 0
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if expect and not verify:
        print(f"error: {text.audit.AUDIT_EXPECT_ALONE}", file=sys.stderr)
        return EXIT_CONFIG
    expect = expect or []
    if legacy and (len(expect) > 1 or not all(audit_export.is_head_hash(value) for value in expect)):
        print(f"error: {text.audit.audit_bad_legacy_expect(' '.join(expect))}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        saved = {} if legacy else audit_export.parse_expect(expect)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    redis = connect(redis_url, name=CLI_CLIENT_NAME, topology=settings.redis_topology())
    try:
        if verify and legacy:
            verdict = await AuditLog(redis).verify_legacy("".join(expect))
            if not verdict.ok:
                print(text.audit.audit_failed(verdict.problem, verdict.checked))
                return 1
            print(audit_export.verified(verdict))
            return 0
        if verify:
            verdicts = await AuditLog(redis).verify_all(saved)
            print(audit_export.verified_all(verdicts))
            return 0 if all(verdict.ok for verdict in verdicts) else 1
        await audit_export.export(redis, sys.stdout, since=start, fmt=fmt, legacy=legacy)
        return 0
    finally:
        await redis.aclose()
