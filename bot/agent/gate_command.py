"""The gate hook's command line, ``python -m bot gate …``: the one place its options are written,
for both installers (``SlackApprover.settings()`` and ``python -m bot claude-code install``)."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass

from ..approvals.model import Mode
from .hook_events import BLOCK_IF_NOT_STARTED


@dataclass(frozen=True)
class GateCommand:
    """The gate's options; an option left at its default is not written (the gate's own default holds)."""

    hook_timeout: float
    """The same number as the hook's ``timeout``: the gate answers before Claude Code gives up on it."""
    mode: Mode | None = None
    wait: float | None = None
    agent_name: str = ""
    requested_by: str = ""
    channel: str = ""
    timeout: float | None = None
    cost_estimator: str = ""
    """``module:function`` the gate process imports."""
    allow_read_only: bool = False
    allow: tuple[str, ...] = ()
    python: str = sys.executable
    """Absolute path of the interpreter that has this package: the hook runs it from any folder."""

    def argv(self) -> list[str]:
        """The words of the command; never a secret in them (``REDIS_URL`` travels in the environment)."""
        words = [self.python, "-m", "bot", "gate"]
        if self.mode is not None:
            words += ["--mode", self.mode.value]
        if self.wait is not None:
            words += ["--wait", _number(self.wait)]
        words += ["--hook-timeout", _number(self.hook_timeout)]
        for flag, value in (
            ("--agent-name", self.agent_name),
            ("--requested-by", self.requested_by),
            ("--channel", self.channel),
        ):
            if value:
                words += [flag, value]
        if self.timeout is not None:
            words += ["--timeout", _number(self.timeout)]
        if self.cost_estimator:
            words += ["--cost-estimator", self.cost_estimator]
        if self.allow_read_only:
            words.append("--allow-read-only")
        words += [f"--allow={rule}" for rule in self.allow]  # one word: a rule is never read as an option
        return words

    def shell(self, *, block_if_not_started: bool = False) -> str:
        """The shell command (Claude Code runs it with ``/bin/sh -c``).

        ``block_if_not_started`` for a PreToolUse hook: a gate that cannot start
        (exit 127) would give no decision, so it exits 2 instead."""
        command = shlex.join(self.argv())
        return command + BLOCK_IF_NOT_STARTED if block_if_not_started else command


def _number(value: float) -> str:
    """As short as it reads back exactly: ``600``, ``0.5``, ``3600`` for ``3600.0``."""
    if isinstance(value, int):
        return str(value)
    short = f"{value:g}"
    if float(short) == value:
        return short
    return str(int(value)) if value.is_integer() else repr(value)
