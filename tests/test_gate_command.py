"""The gate's command line, as both installers write it, reads back exactly through the gate's own options."""

from __future__ import annotations

import argparse
import shlex

import pytest

from bot.agent.gate_command import GateCommand
from bot.agent.hook_events import BLOCK_IF_NOT_STARTED
from bot.approvals.model import Mode
from bot.cli import gate as gate_cli


def _parsed(command: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    gate_cli.add_parser(parser.add_subparsers(dest="command"))
    words = shlex.split(command.removesuffix(BLOCK_IF_NOT_STARTED))
    assert words[1:4] == ["-m", "bot", "gate"]
    return parser.parse_args(words[3:])


@pytest.mark.parametrize("timeout", [0, 0.5, 3600.0, 1234567.0, 0.1234567, 86400])
def test_every_option_reads_back_exactly(timeout):
    command = GateCommand(
        hook_timeout=60,
        mode=Mode.DEFER,
        wait=0,
        agent_name="my laptop",
        requested_by="U0123",
        channel="C0DEPLOYS",
        timeout=timeout,
        cost_estimator="costs:estimate",
        allow_read_only=True,
        allow=("Bash(npm test:*)", "--mode=wait"),
    ).shell(block_if_not_started=True)
    args = _parsed(command)
    assert (args.mode, args.wait, args.hook_timeout, args.timeout) == ("defer", 0, 60, timeout)
    assert (args.agent_name, args.requested_by, args.channel) == ("my laptop", "U0123", "C0DEPLOYS")
    assert args.cost_estimator == "costs:estimate" and args.allow_read_only
    assert args.allow == ["Bash(npm test:*)", "--mode=wait"]  # a rule is never read as an option


def test_options_left_at_their_default_are_not_written():
    command = GateCommand(hook_timeout=600).shell()
    assert shlex.split(command)[1:] == ["-m", "bot", "gate", "--hook-timeout", "600"]
    args = _parsed(command)
    assert (args.mode, args.wait, args.timeout, args.allow) == ("wait", None, None, [])
