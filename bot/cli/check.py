"""``python -m bot check``: Redis, the Slack token, the channels and user groups a worker will use."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from ..approvals.backlog import read_legacy, read_shards
from ..approvals.model import is_group
from ..approvals.policy import Policy, PolicyError, Rule
from ..redis_client import CLI_CLIENT_NAME, MINIMUM_SERVER, connect, redacted, server_version
from ..settings import Settings
from .common import Subcommands, with_settings

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient


def add_parser(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "check", help="check Redis, the Slack token, the approval channel and the policy file"
    )
    parser.add_argument(
        "--drained",
        action="store_true",
        help="only check that Redis holds no pending request and no queued job (before an upgrade)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.drained:
        return with_settings(lambda settings: asyncio.run(check_drained(settings)))
    return with_settings(lambda settings: asyncio.run(check(settings)))


async def check_drained(settings: Settings) -> int:
    """One line: whether any request is pending or any job queued (under the old names too); exit 1 if so."""
    redis_url = settings.required("redis_url")
    redis = connect(redis_url, name=CLI_CLIENT_NAME, topology=settings.redis_topology())
    try:
        async with asyncio.timeout(5):
            shards, legacy = await read_shards(redis), await read_legacy(redis)
    except (RedisError, OSError, TimeoutError) as exc:
        print(f"FAIL redis: {redacted(redis_url)}: {exc or type(exc).__name__}")
        return 1
    finally:
        await redis.aclose()
    pending, jobs = sum(s.pending for s in shards), sum(s.jobs for s in shards)
    if not (pending or jobs or legacy.pending or legacy.jobs):
        print("ok   drained: no pending request, no queued job")
        return 0
    left = f"{_many(pending, 'pending request')}, {_many(jobs, 'queued job')}"
    if legacy.pending or legacy.jobs:
        left += f"; under the old names: {_many(legacy.pending, 'pending request')}, {_many(legacy.jobs, 'queued job')}"
    print(f"FAIL drained: {left}")
    return 1


def _many(count: int, what: str) -> str:
    return f"{count} {what}{'' if count == 1 else 's'}"


async def check(settings: Settings) -> int:
    """Print one line per check; exit 1 if any failed, 2 if a setting is missing."""
    from ..slack.app import interactive_client
    from ..slack.installation_store import RedisInstallationStore
    from ..slack.workspaces import Workspaces, acting_for
    from ..web import load_policy, serve_settings_required

    settings.require(*serve_settings_required(settings))
    redis_url = settings.required("redis_url")
    # OAuth mode: each workspace's approval channel, posted in with that workspace's token.
    approval_channels = (
        {team: w.channel for team, w in settings.slack_workspaces.items()}
        if settings.oauth
        else {"": settings.required("approval_channel")}
    )
    failures = 0

    def report(ok: bool, what: str, detail: str) -> None:
        nonlocal failures
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}: {detail}")

    policy: Policy | None = None
    if settings.approval_policy:
        try:
            policy = load_policy(settings)
            report(True, "policy", f"{settings.approval_policy}: {len(policy.rules)} rules")
        except PolicyError as exc:
            report(False, "policy", str(exc))

    redis = connect(redis_url, name=CLI_CLIENT_NAME, topology=settings.redis_topology())
    try:
        async with asyncio.timeout(5):
            await redis.ping()
            version = await server_version(redis)
        shown = ".".join(map(str, version))
        if version >= MINIMUM_SERVER:
            report(True, "redis", f"{redacted(redis_url)} (Redis {shown})")
        else:
            report(
                False,
                "redis",
                f"{redacted(redis_url)}: Redis {shown} is too old (7.0 or later, or Valkey 7.2)",
            )
    except (RedisError, OSError, TimeoutError) as exc:
        report(False, "redis", f"{redacted(redis_url)}: {exc or type(exc).__name__}")
    try:
        workspaces = Workspaces(settings, RedisInstallationStore(redis)) if settings.oauth else None
        client = interactive_client(settings, workspaces=workspaces)
        for team, approval_channel in approval_channels.items():
            with acting_for(team) if settings.oauth else contextlib.nullcontext():
                await _check_slack(settings, client, team, approval_channel, policy, report)
    finally:
        await redis.aclose()
    return 1 if failures else 0


async def _check_slack(
    settings: Settings,
    client: AsyncWebClient,
    team: str,
    approval_channel: str,
    policy: Policy | None,
    report: Callable[[bool, str, str], None],
) -> None:
    """The token, the approval channel and (with one bot token) what the policy names, of one workspace."""
    from slack_sdk.errors import SlackApiError

    from ..slack.workspaces import NotInstalled

    of = f" of {team}" if team else ""
    try:
        auth = await client.auth_test()
        report(True, f"slack token{of}", f"bot {auth.get('user')} in team {auth.get('team')}")
    except SlackApiError as exc:
        report(False, f"slack token{of}", str(exc.response.get("error")))
    except NotInstalled:
        report(False, f"slack token{of}", "not installed yet: open /slack/install in that workspace")
        return
    except RedisError as exc:
        report(False, f"slack token{of}", f"the installation cannot be read from Redis: {exc}")
        return
    except OSError as exc:
        report(False, f"slack token{of}", f"{settings.slack_api_url}: {exc}")
    # One policy, many workspaces: its channels and groups are checked with one bot token only.
    channels, groups = _policy_targets(policy) if policy is not None and not team else ({}, {})

    async def check_channel(what: str, channel_id: str) -> None:
        """The bot can post there: a member, and the channel not archived."""
        try:
            channel = (await client.conversations_info(channel=channel_id))["channel"]
        except SlackApiError as exc:
            report(False, what, f"{channel_id}: {exc.response.get('error')}")
            return
        except OSError as exc:
            report(False, what, f"{channel_id}: {exc}")
            return
        shown = f"#{channel.get('name')} ({channel_id})"
        if channel.get("is_archived"):
            report(False, what, f"{shown}: archived; nothing can be posted there")
        elif not channel.get("is_member", True):
            report(False, what, f"{shown}: the bot is not a member; /invite it")
        else:
            report(True, what, shown)

    await check_channel(f"approval channel{of}", approval_channel)
    for channel_id, rules in channels.items():
        if channel_id != approval_channel:
            await check_channel(f"channel of {', '.join(rules)}", channel_id)
    for group, uses in groups.items():
        # usergroups.users.list is Tier 2 (about 20 a minute): one call a group, and a policy names few.
        try:
            members = (await client.usergroups_users_list(usergroup=group)).get("users") or []
        except SlackApiError as exc:
            report(False, f"user group of {', '.join(uses)}", f"{group}: {exc.response.get('error')}")
            continue
        except OSError as exc:
            report(False, f"user group of {', '.join(uses)}", f"{group}: {exc}")
            continue
        count = f"{len(members)} member{'' if len(members) == 1 else 's'}"
        report(
            bool(members),
            f"user group of {', '.join(uses)}",
            f"{group}: {count if members else 'no members'}",
        )


def _policy_targets(policy: Policy) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The channels the policy routes to and the user groups it names, each with where it is named."""
    channels: dict[str, list[str]] = {}
    groups: dict[str, list[str]] = {}
    named: list[tuple[str, Rule]] = [
        (rule.name or f"rules[{i}]", rule) for i, rule in enumerate(policy.rules)
    ]
    for name, rule in [*named, ("default", policy.default)]:
        if rule.channel:
            channels.setdefault(rule.channel, []).append(name)
        targets = [*rule.approvers, *rule.mention, *(t for step in rule.escalation for t in step.approvers)]
        for target in dict.fromkeys(targets):
            if is_group(target):
                groups.setdefault(target, []).append(name)
    for target in policy.admins:
        if is_group(target):
            groups.setdefault(target, []).append("admins")
    return channels, groups
