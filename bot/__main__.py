"""Command line: ``serve`` runs a bot worker, ``check`` checks its configuration, ``audit`` exports or verifies the audit log."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import ValidationError
from redis.exceptions import RedisError
from slack_sdk.errors import SlackApiError

from . import audit_export
from .approvals.audit import AuditLog
from .approvals.policy import PolicyError
from .redis_client import connect
from .settings import MissingSetting, Settings
from .slack.app import interactive_client
from .web import create_app, load_policy, serve_settings_required

EXIT_CONFIG = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run one bot worker (HTTP on $PORT, or Socket Mode with SLACK_APP_TOKEN)")
    commands.add_parser("check", help="check Redis, the Slack token, the approval channel and the policy file")
    audit = commands.add_parser("audit", help="export the audit log (needs only REDIS_URL), or verify its hash chain")
    audit.add_argument("--since", help="from this date/time (UTC unless it has an offset) or this long ago (24h, 7d)")
    audit.add_argument("--format", choices=audit_export.FORMATS, default="jsonl", help="output format (default jsonl)")
    audit.add_argument("--verify", action="store_true", help="check that no entry was changed or removed")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
        if args.command == "serve":
            return serve(settings)
        if args.command == "audit":
            return asyncio.run(audit_command(settings, args.since, args.format, args.verify))
        return asyncio.run(check(settings))
    except (MissingSetting, PolicyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        print(f"error: {name} is invalid: {first['msg']}", file=sys.stderr)
        return EXIT_CONFIG


def serve(settings: Settings) -> int:
    """Run one worker until SIGINT/SIGTERM. Run as many as you like behind a load balancer."""
    app = create_app(settings)
    web.run_app(app, port=settings.port, print=None)
    return 0


async def check(settings: Settings) -> int:
    """Print one line per check; exit 1 if any failed, 2 if a setting is missing."""
    settings.require(*serve_settings_required(settings))
    failures = 0

    def report(ok: bool, what: str, detail: str) -> None:
        nonlocal failures
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}: {detail}")

    if settings.approval_policy:
        try:
            policy = load_policy(settings)
            report(True, "policy", f"{settings.approval_policy}: {len(policy.rules)} rules")
        except PolicyError as exc:
            report(False, "policy", str(exc))

    redis = connect(settings.redis_url)
    try:
        async with asyncio.timeout(5):
            await redis.ping()
        report(True, "redis", _redacted(settings.redis_url))
    except (RedisError, OSError, TimeoutError) as exc:
        report(False, "redis", f"{_redacted(settings.redis_url)}: {exc or type(exc).__name__}")
    finally:
        await redis.aclose()

    client = interactive_client(settings)
    try:
        auth = await client.auth_test()
        report(True, "slack token", f"bot {auth.get('user')} in team {auth.get('team')}")
    except SlackApiError as exc:
        report(False, "slack token", str(exc.response.get("error")))
    except OSError as exc:
        report(False, "slack token", f"{settings.slack_api_url}: {exc}")
    try:
        info = await client.conversations_info(channel=settings.approval_channel)
        channel = info["channel"]
        member = channel.get("is_member", True)
        report(member, "approval channel", f"#{channel.get('name')} ({settings.approval_channel})"
               + ("" if member else ": the bot is not a member; /invite it"))
    except SlackApiError as exc:
        report(False, "approval channel", f"{settings.approval_channel}: {exc.response.get('error')}")
    except OSError as exc:
        report(False, "approval channel", str(exc))
    return 1 if failures else 0


async def audit_command(settings: Settings, since: str | None, fmt: str, verify: bool) -> int:
    """Export to stdout (exit 0), or verify: exit 1 if the chain is broken."""
    settings.require("redis_url")
    try:
        start = audit_export.parse_since(since, time.time()) if since else 0
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    redis = connect(settings.redis_url)
    try:
        if verify:
            verdict = await AuditLog(redis).verify()
            if verdict.ok:
                print(f"ok: {verdict.checked} entries, chain intact; head {verdict.head or '(empty log)'}")
                return 0
            print(f"FAIL: {verdict.problem} ({verdict.checked} entries checked before it)")
            return 1
        await audit_export.export(redis, sys.stdout, since=start, fmt=fmt)
        return 0
    finally:
        await redis.aclose()


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


if __name__ == "__main__":
    sys.exit(main())
