"""What the commands share: the exit code for a setting that cannot be used, the options that
say who asks, and reading the settings for the commands that run with them."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import TypeAlias

from pydantic import ValidationError

from .. import logs
from ..approvals.policy import PolicyError
from ..settings import MissingSetting, Settings

EXIT_CONFIG = 2

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What ``add_subparsers()`` returns: each command module's ``add_parser`` takes it."""


def add_asker_options(parser: argparse.ArgumentParser) -> None:
    """``--agent-name``, ``--requested-by``, ``--channel``: who asks, for whom, and where."""
    parser.add_argument("--agent-name", default="", help="shown in Slack as who asks")
    parser.add_argument(
        "--requested-by", default="", metavar="USER_ID", help="Slack user id the agent works for"
    )
    parser.add_argument(
        "--channel", default="", metavar="CHANNEL_ID", help="post here instead of APPROVAL_CHANNEL"
    )


def invalid(exc: ValidationError) -> str:
    """The first invalid setting, named as its environment variable."""
    first = exc.errors()[0]
    name = str(first["loc"][0]).upper() if first["loc"] else "settings"
    return f"{name} is invalid: {first['msg']}"


def with_settings(command: Callable[[Settings], int]) -> int:
    """``command`` with the settings and logging set up; a setting that cannot be used is one plain
    line on stderr and exit 2."""
    try:
        settings = Settings()
        # After the settings are read: LOG_FORMAT says how. A settings error is
        # one plain line on stderr either way (below), never a log line.
        logs.configure(settings, level=logging.INFO)
        return command(settings)
    except (MissingSetting, PolicyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ValidationError as exc:
        print(f"error: {invalid(exc)}", file=sys.stderr)
        return EXIT_CONFIG
