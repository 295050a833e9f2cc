"""The gate hook's configuration: its command-line options (``GateConfig``), what runs it
(``Host``), and who asks, as Slack shows it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from ..approvals.model import Mode
from .deadline import Budget

DEFAULT_WAIT = 540.0
"""Seconds the hook waits for a decision, below Claude Code's 600-second hook limit
(less when ``--hook-timeout`` says the hook's timeout is shorter)."""

ROUTE_WAIT = 5.0
"""Seconds to wait for a bot worker to apply the team policy, which may
allow, deny or pick the mode at once; a request no worker routed yet is
answered as the agent's own mode says."""


class Host(StrEnum):
    """What runs the hook, from ``CLAUDE_CODE_ENTRYPOINT``."""

    SDK = "sdk"
    """The Agent SDK: ``can_use_tool`` waits when the gate answers ``ask``."""
    HEADLESS = "headless"
    """``claude -p``: a deferred run is resumed with ``claude -p --resume``."""
    INTERACTIVE = "interactive"
    """A person at a terminal: no defer, so the gate waits, then says it is still waiting."""

    @classmethod
    def detect(cls, environ: Mapping[str, str]) -> Host:
        entrypoint = environ.get("CLAUDE_CODE_ENTRYPOINT", "")
        if entrypoint in ("sdk-py", "sdk-ts"):
            return cls.SDK
        if entrypoint == "sdk-cli":
            return cls.HEADLESS
        return cls.INTERACTIVE


@dataclass(frozen=True)
class GateConfig:
    """The gate's command-line options (``SlackApprover.settings()`` and ``claude-code install`` write them)."""

    mode: Mode = Mode.WAIT
    wait: float | None = None
    """Seconds to wait in the hook before answering defer/ask/still-waiting;
    None: ``DEFAULT_WAIT``, or less if that cannot fit below ``hook_timeout``."""
    hook_timeout: float | None = None
    """The hook's ``timeout`` in Claude Code's settings; None: Claude Code's default (600 s)."""
    timeout: float | None = None
    """Seconds until the request expires; 0 waits forever; None: ``APPROVAL_TIMEOUT``."""
    agent_name: str = ""
    requested_by: str = ""
    channel: str = ""
    cost_estimator: str = ""
    """``module:function`` of a cost estimator the hook can import."""
    allow_rules: tuple[str, ...] = ()
    """The run's own allow rules (Claude Code's string form): a PreToolUse call they match is left to Claude Code."""
    allow_read_only: bool = False
    """Leave simple read-only Bash commands (``ls``, ``cat FILE``, ``git status``) to Claude Code too."""

    def budget(self) -> Budget:
        """The gate's deadline and wait; ``BudgetError`` if ``wait`` cannot fit below ``hook_timeout``."""
        return Budget.plan(
            hook_timeout=self.hook_timeout, wait=self.wait, default_wait=DEFAULT_WAIT, route_wait=ROUTE_WAIT
        )


def agent_label(name: str, agent_id: str = "", agent_type: str = "") -> str:
    """Who asks, as Slack shows it: the agent's name, and which subagent when one makes the call."""
    if not agent_id and not agent_type:
        return name
    subagent = " ".join(part for part in ("subagent", agent_type, agent_id) if part)
    return f"{name} ({subagent})" if name else subagent
