"""``python -m bot claude-code install | uninstall | doctor``: our hook in Claude Code's settings."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import Subcommands, add_asker_options


def add_parser(commands: Subcommands) -> None:
    claude = commands.add_parser(
        "claude-code", help="install our approval hook in Claude Code's settings, remove it, or check it"
    )
    claude.set_defaults(run=run)
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
            add_asker_options(sub)


def run(args: argparse.Namespace) -> int:
    """``install``/``uninstall`` change one settings file (backup, then atomic write) and exit 0,
    or 2 with the file untouched; ``doctor`` exits 1 if any check failed."""
    from ..agent import claude_code_command

    return claude_code_command.run(args)
