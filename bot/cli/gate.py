"""``python -m bot gate``: the Claude Code command hook (PermissionRequest or PreToolUse)."""

from __future__ import annotations

import argparse
import logging
import sys

from ..approvals.model import Mode
from .common import Subcommands, add_asker_options


def add_parser(commands: Subcommands) -> None:
    gate = commands.add_parser(
        "gate",
        help="Claude Code command hook (PermissionRequest or PreToolUse): ask Slack about the tool call "
        "on stdin, print the decision",
    )
    gate.set_defaults(run=run)
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
    add_asker_options(gate)
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


def run(args: argparse.Namespace) -> int:
    """The hook: decision JSON on stdout and exit 0, or exit 2 (the call is blocked) on any failure.

    It answers before ``--hook-timeout`` (a hook that outlives its timeout
    lets the call run), and refuses, with exit 2, a ``--wait`` that cannot fit.
    """
    from ..agent import gate_config, hook_process
    from ..approvals import bounds

    # Hook stderr reaches the model when the call is blocked: warnings only.
    logging.basicConfig(level=logging.WARNING, format="bot gate: %(message)s")
    if args.timeout is not None:
        try:
            bounds.seconds(args.timeout, "--timeout")
        except bounds.OutOfRange as exc:
            print(f"Blocked: the approval gate's {exc}. The tool was not run.", file=sys.stderr)
            return hook_process.EXIT_BLOCK
    config = gate_config.GateConfig(
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
