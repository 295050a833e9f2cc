"""Command line: ``serve`` runs a bot worker, ``check`` checks its configuration,
``policy`` checks a policy file or explains how it routes a call,
``gate`` is the hook for Claude Code (PermissionRequest or PreToolUse), ``claude-code`` installs it in
Claude Code's settings and checks it, ``mcp`` serves the approval as an MCP tool for Claude Code's
``--permission-prompt-tool``, ``audit`` exports or verifies the audit log, ``bench`` measures the
approval path on loopback, ``demo`` runs the local playground."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

from pydantic import ValidationError
from redis.exceptions import RedisError

from . import audit_export, logs
from .approvals.model import Mode, is_group
from .approvals.policy import Policy, PolicyError, Rule
from .redis_client import CLI_CLIENT_NAME, connect, redacted
from .settings import MissingSetting, Settings

# Each command imports what it needs when it runs: the gate runs before every
# gated tool call, and must not pay for aiohttp, Bolt and the Agent SDK.

EXIT_CONFIG = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "serve", help="run one bot worker (HTTP on $PORT, or Socket Mode with SLACK_APP_TOKEN)"
    )
    commands.add_parser(
        "check", help="check Redis, the Slack token, the approval channel and the policy file"
    )
    gate = commands.add_parser(
        "gate",
        help="Claude Code command hook (PermissionRequest or PreToolUse): ask Slack about the tool call "
        "on stdin, print the decision",
    )
    gate.add_argument(
        "--mode",
        choices=[m.value for m in Mode],
        default=Mode.WAIT.value,
        help="wait for the decision (default), or defer: end the run until it is decided",
    )
    gate.add_argument(
        "--wait",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long the hook waits for a decision (default 540, or less to fit below --hook-timeout)",
    )
    gate.add_argument(
        "--hook-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="the hook's \"timeout\" in Claude Code's settings (default 600, Claude Code's own): "
        "the gate always answers a few seconds before it",
    )
    gate.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds until the request expires (default APPROVAL_TIMEOUT); 0 never",
    )
    gate.add_argument("--agent-name", default="", help="shown in Slack as who asks")
    gate.add_argument(
        "--requested-by", default="", metavar="USER_ID", help="Slack user id the agent works for"
    )
    gate.add_argument(
        "--channel", default="", metavar="CHANNEL_ID", help="post here instead of APPROVAL_CHANNEL"
    )
    gate.add_argument(
        "--cost-estimator",
        default="",
        metavar="MODULE:FUNCTION",
        help="an importable (tool_name, tool_input) -> dollars function",
    )
    gate.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="RULE",
        help="a permission rule your Claude Code settings allow, e.g. 'Bash(npm test:*)' (repeatable): "
        "a call it matches is left to Claude Code's own permission flow, not asked in Slack",
    )
    gate.add_argument(
        "--allow-read-only",
        action="store_true",
        help="leave simple read-only Bash commands (ls, pwd, cat FILE, git status...) "
        "to Claude Code's own permission flow too",
    )
    claude = commands.add_parser(
        "claude-code", help="install our approval hook in Claude Code's settings, remove it, or check it"
    )
    claude_commands = claude.add_subparsers(dest="action", required=True)
    for action, help_ in (
        (
            "install",
            (
                "add the hook (PermissionRequest; --defer: a PreToolUse gate for claude -p), "
                "replacing ours of either kind"
            ),
        ),
        ("uninstall", "remove our hooks, both kinds, and nothing else"),
        (
            "doctor",
            (
                "run each hook of ours as Claude Code would, against an unreachable Redis; "
                "check REDIS_URL answers"
            ),
        ),
    ):
        sub = claude_commands.add_parser(action, help=help_, description=help_)
        scope = sub.add_mutually_exclusive_group()
        default = (
            "without a scope flag: the user, project and project-local (./.claude/settings.local.json) "
            "settings"
            if action == "doctor"
            else "the default"
        )
        scope.add_argument(
            "--user",
            dest="scope",
            action="store_const",
            const="user",
            help="$CLAUDE_CONFIG_DIR/settings.json if set, else ~/.claude/settings.json"
            f"{'' if action == 'doctor' else ' (' + default + ')'}",
        )
        scope.add_argument(
            "--project",
            dest="scope",
            action="store_const",
            const="project",
            help="./.claude/settings.json (shared with the project)",
        )
        scope.add_argument(
            "--settings-file", type=Path, default=None, metavar="PATH", help="this settings file"
        )
        if action == "doctor":
            sub.epilog = default
        if action == "install":
            sub.add_argument(
                "--defer",
                action="store_true",
                help="a PreToolUse gate in defer mode, for headless claude -p runs whose approvals "
                "outlive the process (default: a PermissionRequest hook)",
            )
            sub.add_argument(
                "--hook-timeout",
                type=int,
                default=600,
                metavar="SECONDS",
                help="the hook's timeout, also passed to the gate as --hook-timeout (default 600)",
            )
            sub.add_argument(
                "--timeout",
                type=float,
                default=None,
                metavar="SECONDS",
                help="seconds until a request expires (default: the gate's APPROVAL_TIMEOUT); 0 never",
            )
            sub.add_argument("--agent-name", default="", help="shown in Slack as who asks")
            sub.add_argument(
                "--requested-by", default="", metavar="USER_ID", help="Slack user id the agent works for"
            )
            sub.add_argument(
                "--channel", default="", metavar="CHANNEL_ID", help="post here instead of APPROVAL_CHANNEL"
            )
    mcp = commands.add_parser(
        "mcp",
        help="stdio MCP server with one tool, approvals/approve, for claude -p "
        "--permission-prompt-tool mcp__approvals__approve",
    )
    mcp.add_argument("--agent-name", default="", help="shown in Slack as who asks")
    mcp.add_argument(
        "--requested-by", default="", metavar="USER_ID", help="Slack user id the agent works for"
    )
    mcp.add_argument(
        "--channel", default="", metavar="CHANNEL_ID", help="post here instead of APPROVAL_CHANNEL"
    )
    mcp.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds until a request expires (default APPROVAL_TIMEOUT); 0 never. "
        "Keep it below the host's MCP_TOOL_TIMEOUT",
    )
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
    bench = commands.add_parser(
        "bench",
        help="measure click → wake, ask → post, concurrent waits and worker throughput on loopback, "
        "and a burst under Slack's rate limits",
    )
    bench.add_argument(
        "--decisions", type=int, default=2000, help="clicks timed, steady and burst each (default 2000)"
    )
    bench.add_argument(
        "--rate", type=float, default=200, help="asks and clicks per second when steady (default 200)"
    )
    bench.add_argument(
        "--waits", type=int, default=10_000, help="concurrent waits in the agent (default 10000)"
    )
    bench.add_argument(
        "--throughput", type=int, default=2000, help="clicks per throughput run (default 2000)"
    )
    bench.add_argument("--concurrency", type=int, default=32, help="clicks in flight in bursts (default 32)")
    bench.add_argument("--floor-samples", type=int, default=2000, help="round trips per floor (default 2000)")
    limited = bench.add_argument_group("the phase under Slack's rate limits")
    limited.add_argument(
        "--limited-requests", type=int, default=60, metavar="N", help="requests asked at once (default 60)"
    )
    limited.add_argument(
        "--limited-channels", type=int, default=2, metavar="N", help="channels they go to (default 2)"
    )
    limited.add_argument(
        "--limited-agents",
        type=int,
        default=4,
        metavar="N",
        help="agents asking them, agent i posting to channel i mod channels (default 4)",
    )
    limited.add_argument(
        "--limited-workers", type=int, default=2, metavar="N", help="workers sharing the limits (default 2)"
    )
    limited.add_argument(
        "--slack-rate-scale",
        type=float,
        default=6.0,
        metavar="FACTOR",
        help="Slack's rates sped up this many times, for the stand-in and the workers' "
        "SLACK_RATE_SCALE (default 6)",
    )
    limited.add_argument("--only-limited", action="store_true", help="run only this phase")
    bench.add_argument(
        "--json",
        default="bench-results.json",
        metavar="PATH",
        help="write the results here (default bench-results.json)",
    )
    demo = commands.add_parser(
        "demo", help="try it without Slack: a local page plays the channel, an agent asks for approvals"
    )
    demo.add_argument("--port", type=int, default=None, help="port of the page (default $PORT, else 3000)")
    demo.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1); off loopback, the page needs its secret",
    )
    demo.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another name or address the page is opened at (repeatable; for --host 0.0.0.0)",
    )
    demo.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="folder the agent works in (default: a new temporary folder, removed at exit)",
    )
    policy = commands.add_parser("policy", help="check a policy file, or explain how it routes one tool call")
    policy_commands = policy.add_subparsers(dest="action", required=True)
    policy_check = policy_commands.add_parser("check", help="validate the file and print each rule in words")
    policy_check.add_argument("file", type=Path, metavar="FILE")
    explain = policy_commands.add_parser(
        "explain", help="which rule a tool call matches, why the earlier ones do not, and what would happen"
    )
    explain.add_argument("file", type=Path, metavar="FILE")
    explain.add_argument("--tool", required=True, help="the tool's name, e.g. Bash or mcp__billing__refund")
    explain.add_argument(
        "--input", default="{}", metavar="JSON", help="the tool input, a JSON object (default {})"
    )
    explain.add_argument(
        "--cost", type=float, default=None, metavar="DOLLARS", help="the agent's cost estimate"
    )
    explain.add_argument(
        "--requested-by", default="", metavar="USER_ID", help="Slack user id the agent works for"
    )
    args = parser.parse_args(argv)

    if args.command == "policy":
        return run_policy(args)
    if args.command == "gate":
        return run_gate(args)
    if args.command == "claude-code":
        return run_claude_code(args)
    if args.command == "bench":
        return run_bench(args)
    if args.command == "demo":
        return run_demo(args)
    if args.command == "mcp":
        return run_mcp(args)
    try:
        settings = Settings()
        # After the settings are read: LOG_FORMAT says how. A settings error is
        # one plain line on stderr either way (below), never a log line.
        logs.configure(settings, level=logging.INFO)
        if args.command == "serve":
            return serve(settings)
        if args.command == "audit":
            return asyncio.run(audit_command(settings, args.since, args.format, args.verify, args.expect))
        return asyncio.run(check(settings))
    except (MissingSetting, PolicyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ValidationError as exc:
        print(f"error: {_invalid(exc)}", file=sys.stderr)
        return EXIT_CONFIG


def _invalid(exc: ValidationError) -> str:
    """The first invalid setting, named as its environment variable."""
    first = exc.errors()[0]
    name = str(first["loc"][0]).upper() if first["loc"] else "settings"
    return f"{name} is invalid: {first['msg']}"


def run_policy(args: argparse.Namespace) -> int:
    """``check``: the rules in words, exit 0, or the error line a worker would print and exit 2.
    ``explain``: the routing of one call, exit 0; 1 for an input that cannot be used."""
    import json
    import math

    from .approvals import policy_words

    try:
        policy = Policy.load(args.file)
    except PolicyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.action == "check":
        print("\n".join(policy_words.describe_policy(policy, args.file)))
        return 0
    try:
        tool_input = json.loads(args.input)
    except json.JSONDecodeError as exc:
        print(f"error: --input is not valid JSON: {exc}", file=sys.stderr)
        return 1
    if not isinstance(tool_input, dict):
        print('error: --input must be a JSON object, e.g. \'{"command": "ls"}\'', file=sys.stderr)
        return 1
    if args.cost is not None and not (math.isfinite(args.cost) and args.cost >= 0):
        print("error: --cost must be a finite number of dollars, 0 or more", file=sys.stderr)
        return 1
    print(
        "\n".join(
            policy_words.explain(policy, args.tool, tool_input, args.cost, requested_by=args.requested_by)
        )
    )
    return 0


def run_gate(args: argparse.Namespace) -> int:
    """The hook: decision JSON on stdout and exit 0, or exit 2 (the call is blocked) on any failure.

    It answers before ``--hook-timeout`` (a hook that outlives its timeout
    lets the call run), and refuses, with exit 2, a ``--wait`` that cannot fit.
    """
    from .agent import gate, hook_process
    from .approvals import bounds

    # Hook stderr reaches the model when the call is blocked: warnings only.
    logging.basicConfig(level=logging.WARNING, format="bot gate: %(message)s")
    if args.timeout is not None:
        try:
            bounds.seconds(args.timeout, "--timeout")
        except bounds.OutOfRange as exc:
            print(f"Blocked: the approval gate's {exc}. The tool was not run.", file=sys.stderr)
            return hook_process.EXIT_BLOCK
    config = gate.GateConfig(
        mode=Mode(args.mode),
        wait=args.wait,
        hook_timeout=args.hook_timeout,
        agent_name=args.agent_name,
        requested_by=args.requested_by,
        channel=args.channel,
        cost_estimator=args.cost_estimator,
        timeout=args.timeout,
        allow_rules=tuple(args.allow),
        allow_read_only=args.allow_read_only,
    )
    return hook_process.main(config)


def run_claude_code(args: argparse.Namespace) -> int:
    """``install``/``uninstall`` change one settings file (backup, then atomic write) and exit 0,
    or 2 with the file untouched; ``doctor`` exits 1 if any check failed."""
    from .agent import claude_code_command

    return claude_code_command.run(args)


def run_mcp(args: argparse.Namespace) -> int:
    """Serve until the host disconnects. A setting that cannot be used does not stop it: every call is denied, saying why."""
    from .agent.mcp_server import McpConfig
    from .agent.mcp_server import main as mcp_main

    return mcp_main(
        McpConfig(
            agent_name=args.agent_name,
            requested_by=args.requested_by,
            channel=args.channel,
            timeout=args.timeout,
        )
    )


def run_bench(args: argparse.Namespace) -> int:
    """Print the table, write the JSON; exit 1 if the run itself failed (a decision lost, a process died)."""
    import json

    from .bench import report
    from .bench.run import Sizes, run

    try:
        sizes = Sizes(
            decisions=args.decisions,
            rate=args.rate,
            waits=args.waits,
            throughput=args.throughput,
            concurrency=args.concurrency,
            floor_samples=args.floor_samples,
            limited_requests=args.limited_requests,
            limited_channels=args.limited_channels,
            limited_agents=args.limited_agents,
            limited_workers=args.limited_workers,
            slack_rate_scale=args.slack_rate_scale,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        results = asyncio.run(
            run(
                sizes,
                progress=lambda line: print(f"… {line}", file=sys.stderr, flush=True),
                only_limited=args.only_limited,
            )
        )
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"bench failed: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    with open(args.json, "w", encoding="utf-8") as out:
        json.dump(results, out, indent=2)
    print(report.table(results))
    print(f"\nresults written to {args.json}")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """Run the playground until Ctrl-C. Uses ``REDIS_URL`` if set, and Claude if ``ANTHROPIC_API_KEY`` is."""
    import os
    import shutil
    import signal
    import tempfile

    from . import text
    from .demo.run import Demo

    # The bot's own logs would drown the agent's story; problems still show.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"error: {_invalid(exc)}", file=sys.stderr)
        return EXIT_CONFIG
    api_key = os.environ.get("ANTHROPIC_API_KEY") or None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="approvals-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)

    async def run() -> None:
        async with Demo.start(
            workdir=workdir,
            out=sys.stdout,
            host=args.host,
            port=args.port or settings.port,
            redis_url=settings.redis_url,
            api_key=api_key,
            allow_hosts=args.allow_host,
        ) as demo:
            if not demo.guard.token_in_page:
                print(
                    text.demo.DEMO_EXPOSED.format(host=args.host, url=demo.page_url),
                    file=sys.stderr,
                    flush=True,
                )
            print(f"Approvals playground: open {demo.page_url}  (Ctrl-C stops it)")
            print(demo.storage.description)
            agent = (
                "Claude (ANTHROPIC_API_KEY is set)"
                if api_key
                else (
                    "a scripted model driving the real Agent SDK and CLI (set ANTHROPIC_API_KEY for Claude)"
                )
            )
            print(f"agent: {agent}, working in {workdir}")
            print("What the agent receives for each request is printed below.\n", flush=True)
            # Ctrl-C cancels this wait (asyncio.run's own handling); SIGTERM ends it the same way.
            stop = asyncio.Event()
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            await stop.wait()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(
            f"error: cannot serve the playground on {args.host}:{args.port or settings.port}: {exc.strerror or exc}"
            " (pass --port)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def serve(settings: Settings) -> int:
    """Run one worker until SIGINT/SIGTERM. Run as many as you like behind a load balancer."""
    from . import http_limits
    from .web import SocketModeRefused, create_app, hangup_handler

    app = create_app(settings)
    # Not web.run_app: its sites take no protocol of ours, and slow clients
    # need the header deadline and connection cap (bot.http_limits).
    try:
        asyncio.run(http_limits.serve(app, settings, on_hangup=hangup_handler(app)))
    except SocketModeRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


async def check(settings: Settings) -> int:
    """Print one line per check; exit 1 if any failed, 2 if a setting is missing."""
    from slack_sdk.errors import SlackApiError

    from .slack.app import interactive_client
    from .web import load_policy, serve_settings_required

    settings.require(*serve_settings_required(settings))
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

    redis = connect(settings.redis_url, name=CLI_CLIENT_NAME)
    try:
        async with asyncio.timeout(5):
            await redis.ping()
        report(True, "redis", redacted(settings.redis_url))
    except (RedisError, OSError, TimeoutError) as exc:
        report(False, "redis", f"{redacted(settings.redis_url)}: {exc or type(exc).__name__}")
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

    await check_channel("approval channel", settings.approval_channel)
    for channel_id, rules in channels.items():
        if channel_id != settings.approval_channel:
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


async def audit_command(
    settings: Settings, since: str | None, fmt: str, verify: bool, expect: str = ""
) -> int:
    """Export to stdout (exit 0), or verify: exit 1 if the chain is broken or lacks ``expect``.

    Exit 2 for a setting or an argument that cannot be used.
    """
    from . import text
    from .approvals.audit import AuditLog

    settings.require("redis_url")
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
    redis = connect(settings.redis_url, name=CLI_CLIENT_NAME)
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
