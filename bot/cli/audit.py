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
        help="check that no entry was changed or removed; prints the head hash to save elsewhere",
    )
    audit.add_argument(
        "--expect",
        default="",
        metavar="HASH",
        help="with --verify: fail unless the chain holds this hash (a head saved outside Redis)",
    )
    audit.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return with_settings(
        lambda settings: asyncio.run(
            audit_command(settings, args.since, args.format, args.verify, args.expect)
        )
    )


async def audit_command(
    settings: Settings, since: str | None, fmt: str, verify: bool, expect: str = ""
) -> int:
    """Export to stdout (exit 0), or verify: exit 1 if the chain is broken or lacks ``expect``.

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
    if expect and not audit_export.is_head_hash(expect):
        print(f"error: {text.audit.audit_bad_expect(expect)}", file=sys.stderr)
        return EXIT_CONFIG
    redis = connect(redis_url, name=CLI_CLIENT_NAME, topology=settings.redis_topology())
    try:
        if verify:
            verdict = await AuditLog(redis).verify(expect=expect)
            if not verdict.ok:
                print(text.audit.audit_failed(verdict.problem, verdict.checked))
                return 1
            print(audit_export.verified(verdict))
            return 0
        await audit_export.export(redis, sys.stdout, since=start, fmt=fmt)
        return 0
    finally:
        await redis.aclose()
