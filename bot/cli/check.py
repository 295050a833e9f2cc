"""``python -m bot check``: Redis, the Slack token, the channels and user groups a worker will use."""

from __future__ import annotations

import argparse
import asyncio

from redis.exceptions import RedisError

from ..approvals.model import is_group
from ..approvals.policy import Policy, PolicyError, Rule
from ..redis_client import CLI_CLIENT_NAME, MINIMUM_SERVER, connect, redacted, server_version
from ..settings import Settings
from .common import Subcommands, with_settings


def add_parser(commands: Subcommands) -> None:
    commands.add_parser(
        "check", help="check Redis, the Slack token, the approval channel and the policy file"
    ).set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return with_settings(lambda settings: asyncio.run(check(settings)))


async def check(settings: Settings) -> int:
    """Print one line per check; exit 1 if any failed, 2 if a setting is missing."""
    from slack_sdk.errors import SlackApiError

    from ..slack.app import interactive_client
    from ..web import load_policy, serve_settings_required

    settings.require(*serve_settings_required(settings))
    redis_url = settings.required("redis_url")
    approval_channel = settings.required("approval_channel")
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
    channels, groups = _policy_targets(policy) if policy is not None else ({}, {})

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

    await check_channel("approval channel", approval_channel)
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
    return 1 if failures else 0


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
