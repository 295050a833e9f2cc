"""``python -m bot serve``: one bot worker."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ..settings import Settings
from .common import EXIT_CONFIG, Subcommands, with_settings


def add_parser(commands: Subcommands) -> None:
    commands.add_parser(
        "serve", help="run one bot worker (HTTP on $PORT, or Socket Mode with SLACK_APP_TOKEN)"
    ).set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return with_settings(serve)


def serve(settings: Settings) -> int:
    """Run one worker until SIGINT/SIGTERM. Run as many as you like behind a load balancer."""
    from .. import http_limits
    from ..web import SocketModeRefused, create_app, hangup_handler

    app = create_app(settings)
    # Not web.run_app: its sites take no protocol of ours, and slow clients
    # need the header deadline and connection cap (bot.http_limits).
    try:
        asyncio.run(http_limits.serve(app, settings, on_hangup=hangup_handler(app)))
    except SocketModeRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return 0
