"""``python -m bot mcp``: the approval as an MCP tool, for Claude Code's ``--permission-prompt-tool``."""

from __future__ import annotations

import argparse

from .common import Subcommands, add_asker_options


def add_parser(commands: Subcommands) -> None:
    mcp = commands.add_parser(
        "mcp",
        help="stdio MCP server with one tool, approvals/approve, for claude -p "
        "--permission-prompt-tool mcp__approvals__approve",
    )
    mcp.set_defaults(run=run)
    add_asker_options(mcp)
    mcp.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds until a request expires (default APPROVAL_TIMEOUT); 0 never. "
        "Keep it below the host's MCP_TOOL_TIMEOUT",
    )


def run(args: argparse.Namespace) -> int:
    """Serve until the host disconnects. A setting that cannot be used does not stop it: every call is denied, saying why."""
    from ..agent.mcp_server import McpConfig
    from ..agent.mcp_server import main as mcp_main

    return mcp_main(
        McpConfig(
            agent_name=args.agent_name,
            requested_by=args.requested_by,
            channel=args.channel,
            timeout=args.timeout,
        )
    )
