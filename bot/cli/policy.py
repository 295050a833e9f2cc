"""``python -m bot policy check | explain``: a policy file in words, or how it routes one call."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..approvals.policy import Policy, PolicyError
from .common import EXIT_CONFIG, Subcommands


def add_parser(commands: Subcommands) -> None:
    policy = commands.add_parser("policy", help="check a policy file, or explain how it routes one tool call")
    policy.set_defaults(run=run)
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


def run(args: argparse.Namespace) -> int:
    """``check``: the rules in words, exit 0, or the error line a worker would print and exit 2.
    ``explain``: the routing of one call, exit 0; 1 for an input that cannot be used."""
    import json
    import math

    from ..approvals import policy_words

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
