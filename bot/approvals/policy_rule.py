"""One rule of the policy: which calls it matches, what it decides, and the route it makes.

``Rule.mismatch`` is the one matching routine (routing and ``policy explain``
both use it); ``to_route`` turns the rule that applies into a ``Route``.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from . import bounds
from .model import Mode
from .policy_values import ChannelId, Dollars, Duration, SlackTarget
from .rules import path_glob
from .tools import COMMAND, FILE_PATH


class Action(StrEnum):
    ASK = "ask"
    ALLOW = "allow"
    """Approved at once, audited, nothing posted."""
    DENY = "deny"
    """Denied at once with the rule's message, audited, nothing posted."""


class OnTimeout(StrEnum):
    DENY = "deny"
    ESCALATE = "escalate"
    """Fire every escalation step not yet fired, then wait one more ``timeout`` before denying."""


class StrictModel(BaseModel):
    """A part of the policy file: unknown fields are errors, and nothing changes once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EscalationStep(StrictModel):
    after: Duration
    """Time since the request was posted."""
    approvers: list[SlackTarget] = Field(min_length=1)
    """Mentioned in the thread and added to who may decide."""


class Rule(StrictModel):
    name: str = ""
    """Shown in Slack and in the audit log; also names the route's daily spend counter."""

    # -- what it matches --------------------------------------------------
    tool: str = "*"
    """Glob on the tool name (``mcp__billing__*``)."""
    command: re.Pattern[str] | None = None
    """Regex searched in a Bash ``command``."""
    file_path: str | None = None
    """Glob on ``file_path`` (``*`` stays in one directory, ``**`` crosses them)."""
    input: dict[str, re.Pattern[str]] = Field(default_factory=dict)
    """Regex searched in any other input field (non-strings as JSON)."""
    when_cost_over: Dollars | None = None
    """Only requests whose cost is known and above this many dollars."""

    # -- what it does -----------------------------------------------------
    action: Action = Action.ASK
    message: str = ""
    """What the model is told when ``action: deny``."""
    channel: ChannelId | None = None
    mention: list[SlackTarget] = Field(default_factory=list)
    """Notified when the request is posted (user groups as ``<!subteam^S…>``)."""
    approvers: list[SlackTarget] = Field(default_factory=list)
    """Who may decide; empty means anyone who can see the message."""
    required_approvals: int = Field(default=1, ge=1, le=20)
    allow_self_approval: bool = False
    timeout: Duration | None = None
    on_timeout: OnTimeout = OnTimeout.DENY
    escalation: list[EscalationStep] = Field(default_factory=list)
    mode: Mode | None = None
    """``defer`` ends the agent's run while the request is pending (it resumes
    once decided); ``wait`` keeps it waiting. Unset: the agent's own choice."""

    # -- what it costs ----------------------------------------------------
    cost: Dollars | None = None
    """Dollars per call, when the agent gives no estimate."""
    cost_field: str | None = None
    """Input field holding the call's cost in dollars."""
    daily_budget: Dollars | None = Field(default=None, gt=0)

    @field_validator("tool")
    @classmethod
    def _tool_glob(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a tool or a glob such as mcp__billing__*")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if self.on_timeout is OnTimeout.ESCALATE and not (self.escalation and self.timeout):
            raise ValueError("on_timeout: escalate needs a timeout and at least one escalation step")
        if self.action is not Action.ASK and (
            self.approvers or self.escalation or self.required_approvals > 1
        ):
            raise ValueError(
                f"action: {self.action} decides at once; approvers and escalation only apply to ask"
            )
        if self.message and self.action is not Action.DENY:
            raise ValueError("message is what the model is told on action: deny")
        return self

    def matches(self, tool_name: str, tool_input: dict[str, Any], cost: float | None) -> bool:
        return self.mismatch(tool_name, tool_input, cost) is None

    def mismatch(self, tool_name: str, tool_input: dict[str, Any], cost: float | None) -> str | None:
        """The first matching field the call fails (``tool``, ``command``, ``file_path``,
        ``input.KEY`` or ``when_cost_over``), or None when the rule matches it."""
        if not fnmatch.fnmatchcase(tool_name, self.tool):
            return "tool"
        if self.command is not None:
            command = tool_input.get(COMMAND)
            if not isinstance(command, str) or not self.command.search(command):
                return "command"
        if self.file_path is not None:
            path = tool_input.get(FILE_PATH)
            if not isinstance(path, str) or not path_glob(self.file_path, path):
                return "file_path"
        for key, pattern in self.input.items():
            value = tool_input.get(key)
            if value is None or not pattern.search(value if isinstance(value, str) else _json(value)):
                return f"input.{key}"
        if self.when_cost_over is not None and (cost is None or cost <= self.when_cost_over):
            return "when_cost_over"
        return None

    def cost_of(self, tool_input: dict[str, Any], estimate: float | None) -> float | None:
        """The agent's estimate, else the input's ``cost_field``, else the rule's flat ``cost``.

        Raises ``bounds.OutOfRange`` for a cost that is there but unusable
        (``1e999``, ``"nan"``, negative, absurdly large): treating it as
        unknown would let the call slip past the rules that route by cost.
        """
        if estimate is not None:
            return bounds.dollars(estimate, "the agent's cost estimate")
        if self.cost_field is not None and self.cost_field in tool_input:
            value = tool_input[self.cost_field]
            what = f"the input's {self.cost_field}"
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    raise bounds.OutOfRange(f"{what} is not a number of dollars") from None
            if value is not None:
                return bounds.dollars(value, what)
        return self.cost


class DefaultRule(Rule):
    """The fallback: the same settings as a rule, without the matching fields."""

    @model_validator(mode="after")
    def _no_matching(self) -> DefaultRule:
        if (
            self.tool != "*"
            or self.command
            or self.file_path
            or self.input
            or self.when_cost_over is not None
        ):
            raise ValueError("default applies when no rule matches; it cannot match on tool, input or cost")
        return self


@dataclass(frozen=True)
class Route:
    """What the policy decided for one request."""

    rule: str
    """The rule's name, ``rules[i]`` when it has none, or ``default``."""
    action: Action
    message: str = ""
    channel: str = ""
    mention: tuple[str, ...] = ()
    approvers: tuple[str, ...] = ()
    required: int = 1
    allow_self: bool = False
    timeout: float = 0
    on_timeout: OnTimeout = OnTimeout.DENY
    escalation: tuple[EscalationStep, ...] = ()
    cost: float | None = None
    daily_budget: float | None = None
    mode: Mode | None = None


def to_route(name: str, rule: Rule, cost: float | None) -> Route:
    """What ``rule`` (named ``name``) decides for a call costing ``cost``."""
    return Route(
        rule=name,
        action=rule.action,
        message=rule.message,
        channel=rule.channel or "",
        mention=tuple(rule.mention),
        approvers=tuple(rule.approvers),
        required=rule.required_approvals,
        allow_self=rule.allow_self_approval,
        timeout=rule.timeout or 0,
        on_timeout=rule.on_timeout,
        escalation=tuple(sorted(rule.escalation, key=lambda step: step.after)),
        cost=cost,
        daily_budget=rule.daily_budget,
        mode=rule.mode,
    )


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)
