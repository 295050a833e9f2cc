"""Command line: ``serve`` runs a bot worker, ``check`` checks its configuration,
``policy`` checks a policy file or explains how it routes a call,
``gate`` is the hook for Claude Code (PermissionRequest or PreToolUse), ``claude-code`` installs it in
Claude Code's settings and checks it, ``mcp`` serves the approval as an MCP tool for Claude Code's
``--permission-prompt-tool``, ``audit`` exports or verifies the audit log, ``bench`` measures the
approval path on loopback, ``demo`` runs the local playground."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from . import audit, bench, check, claude_code, demo, gate, mcp, policy, serve

# Each command imports what it needs when it runs: the gate runs before every
# gated tool call, and must not pay for aiohttp, Bolt and the Agent SDK.


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for command in (serve, check, gate, claude_code, mcp, audit, bench, demo, policy):
        command.add_parser(commands)
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)
