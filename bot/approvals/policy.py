"""The team's approval policy: which requests go where, who decides, how many must agree.

Loaded from the YAML or TOML file ``APPROVAL_POLICY`` names, validated once
when a worker starts. Rules are tried in order and the first that matches a
request applies; ``default`` applies when none does. Routing happens in the
bot workers (when a request is posted), so agents keep needing only Redis and
a policy change needs no agent redeploy.

Example (YAML)::

    timezone: Europe/Paris
    rules:
      - name: big-spend
        tool: "mcp__billing__*"
        cost_field: estimated_cost_usd
        when_cost_over: 50
        channel: C0ONCALL
        approvers: [S0ONCALL]
        mention: [S0ONCALL]
        daily_budget: 500
        escalation:
          - {after: 15m, approvers: [S0SECONDARY]}
      - tool: Bash
        command: "^rm -rf /"
        action: deny
        message: Never delete the root file system.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import re
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .. import text
from . import bounds
from .model import Mode
from .rules import path_glob
from .tools import COMMAND, FILE_PATH


class PolicyError(ValueError):
    """The policy file cannot be used; the message names the file, rule and field."""


def parse_duration(value: Any) -> float:
    """``90``, ``"90s"``, ``"15m"``, ``"2h"``, ``"1d"``, ``"1h30m"`` → seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 15m, 2h or 1d")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif (
        isinstance(value, str)
        and (parts := re.fullmatch(r"\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*", value))
        and value.strip()
    ):
        days, hours, minutes, secs = (int(p or 0) for p in parts.groups())
        seconds = float(days * 86400 + hours * 3600 + minutes * 60 + secs)
    else:
        raise ValueError("expected a duration such as 30s, 15m, 2h or 1d")
    return bounds.seconds(seconds, "a duration")


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written as a number or as ``30s`` / ``15m`` / ``2h`` / ``1d``; finite, at most a year."""

Dollars = Annotated[float, Field(ge=0, le=bounds.MAX_DOLLARS, allow_inf_nan=False)]
"""A cost or budget: finite, not negative, at most ``bounds.MAX_DOLLARS``."""


def _slack_id(pattern: str, what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(f"expected {what}, got {value!r}")
        return value

    return AfterValidator(check)


SlackTarget = Annotated[str, _slack_id(r"[UWS][A-Z0-9]{2,}", "a Slack user id (U…) or user group id (S…)")]
"""A user (``U…``/``W…``) or a user group (``S…``)."""

ChannelId = Annotated[str, _slack_id(r"[CGD][A-Z0-9]{2,}", "a Slack channel id (C…)")]

TeamId = Annotated[str, _slack_id(r"[TE][A-Z0-9]{2,}", "a Slack workspace id (T…) or organisation id (E…)")]
"""A workspace (``T…``) or an Enterprise Grid organisation (``E…``)."""


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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EscalationStep(_Strict):
    after: Duration
    """Time since the request was posted."""
    approvers: list[SlackTarget] = Field(min_length=1)
    """Mentioned in the thread and added to who may decide."""


class Rule(_Strict):
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


class _DefaultRule(Rule):
    """The fallback: the same settings as a rule, without the matching fields."""

    @model_validator(mode="after")
    def _no_matching(self) -> _DefaultRule:
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


@dataclass(frozen=True)
class Tried:
    """One rule as routing tried it (``Policy.tried``)."""

    name: str
    rule: Rule
    cost: float | None = None
    """The call's cost as this rule reads it."""
    missed: str | None = None
    """The matching field the call fails (``Rule.mismatch``); None when the rule applies."""
    unpriced: str = ""
    """Why the cost cannot be read, when it cannot: the call is denied on this rule."""


class Policy(_Strict):
    timezone: str = "UTC"
    """Time zone the daily budgets reset in (IANA name)."""
    rules: list[Rule] = Field(default_factory=list)
    default: _DefaultRule = Field(default_factory=_DefaultRule)
    admins: list[SlackTarget] = Field(default_factory=list)
    """Users and groups who may remove any team allow-list rule (besides each route's approvers)."""
    trusted_teams: list[TeamId] = Field(default_factory=list)
    """Other workspaces (``T…``) or Enterprise Grid organisations (``E…``) whose people may act:
    click, submit, run ``/approvals``, be heard in threads. Without them, only people of the
    workspace (or organisation) the bot is installed in may; in a Slack Connect channel people
    from elsewhere can see the buttons, and are refused."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def today(self, now: float) -> str:
        """The budget day ``now`` falls in, in the policy's time zone."""
        return dt.datetime.fromtimestamp(now, self.zone).date().isoformat()

    def route(
        self,
        tool_name: str,
        tool_input: dict[str, Any],
        estimate: float | None = None,
        *,
        resolved: dict[str, str] | None = None,
    ) -> Route:
        """The first rule that matches, else the default.

        ``resolved`` holds path fields as the agent's host resolved them
        (symlinks, ``..``). The call is routed by the path as written and by
        where it leads: a deny for either denies, it is allowed only if both
        are, and otherwise asked on the route of the real target (or of the
        written path, when only that one asks).
        """
        written = self._first(tool_name, tool_input, estimate)
        real_input = {**tool_input, **resolved} if resolved else tool_input
        if real_input == tool_input:
            return written
        real = self._first(tool_name, real_input, estimate)
        for route in (real, written):
            if route.action is Action.DENY:
                return route
        if real.action is Action.ASK or written.action is not Action.ASK:
            return real
        return written

    def _named(self) -> list[tuple[str, Rule]]:
        """Every rule with the name routes carry (``rules[i]`` when it has none), the default last."""
        named: list[tuple[str, Rule]] = [
            (rule.name or f"rules[{i}]", rule) for i, rule in enumerate(self.rules)
        ]
        return [*named, (self.default.name or "default", self.default)]

    def tried(self, tool_name: str, tool_input: dict[str, Any], estimate: float | None = None) -> list[Tried]:
        """The rules in order as routing tries them, up to the one that decides: the first
        that matches, the default, or the first whose cost cannot be read (the call is denied)."""
        tried: list[Tried] = []
        for name, rule in self._named():
            try:
                cost = rule.cost_of(tool_input, estimate)
            except bounds.OutOfRange as exc:
                tried.append(Tried(name, rule, unpriced=str(exc)))
                break
            missed = None if rule is self.default else rule.mismatch(tool_name, tool_input, cost)
            tried.append(Tried(name, rule, cost, missed))
            if missed is None:
                break
        return tried

    def _first(self, tool_name: str, tool_input: dict[str, Any], estimate: float | None) -> Route:
        decided = self.tried(tool_name, tool_input, estimate)[-1]
        if decided.unpriced:
            # A call whose price cannot be read is not routed around the
            # cost rules as if it were free: it is denied.
            return Route(
                rule=decided.name, action=Action.DENY, message=text.decision.unpriced(decided.unpriced)
            )
        return to_route(decided.name, decided.rule, decided.cost)

    def rule_managers(self, route: str) -> tuple[str, ...] | None:
        """Who may remove a team allow-list rule granted on ``route``: the
        admins and the route's approvers; None when anyone may (the route
        lets anyone approve). A route no longer in the policy leaves the admins."""
        named = dict(reversed(self._named()))  # the first rule of a name wins, as in routing
        rule = named.get(route or (self.default.name or "default"))  # older rules: the default's
        if rule is not None and rule.action is Action.ASK and not rule.approvers:
            return None
        approvers = tuple(rule.approvers) if rule is not None else ()
        return tuple(dict.fromkeys((*self.admins, *approvers)))

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """Read and validate a ``.yaml``/``.yml`` or ``.toml`` file; ``PolicyError`` says what is wrong."""
        return cls.from_bytes(cls.read(path), path)

    @staticmethod
    def read(path: str | Path) -> bytes:
        """The policy file's bytes; ``PolicyError`` if it cannot be read."""
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise PolicyError(f"{path}: cannot read the policy file: {exc}") from None

    @classmethod
    def from_bytes(cls, raw: bytes, path: str | Path) -> Policy:
        """Validate a policy file's content; ``path`` gives its format (suffix) and names it in errors."""
        path = Path(path)
        try:
            raw_text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError(f"{path}: cannot read the policy file: {exc}") from None
        if not raw_text.strip():
            # Never the built-in default by accident: an empty file is most often one being written.
            raise PolicyError(f"{path}: the policy file is empty")
        try:
            if path.suffix.lower() == ".toml":
                data = tomllib.loads(raw_text)
            elif path.suffix.lower() in (".yaml", ".yml"):
                data = yaml.safe_load(raw_text)
            else:
                raise PolicyError(f"{path}: the policy file must end in .yaml, .yml or .toml")
        except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
            raise PolicyError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from None
        return cls.parse(data if data is not None else {}, source=str(path))

    @classmethod
    def parse(cls, data: Any, *, source: str = "policy") -> Policy:
        if not isinstance(data, dict):
            raise PolicyError(
                f"{source}: expected a mapping with 'rules' (and optionally 'default', 'timezone')"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise PolicyError(f"{source}: {_describe(exc, data)}") from None


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


def _describe(exc: ValidationError, data: dict[str, Any]) -> str:
    """The first error as ``rule 'deploys' (rules[2]), field approvers[0]: …``."""
    error = exc.errors(include_url=False)[0]
    loc = list(error["loc"])
    where = ""
    if loc[:1] == ["rules"] and len(loc) > 1 and isinstance(loc[1], int):
        index = loc[1]
        rules = data.get("rules")
        named = (
            rules[index].get("name") if isinstance(rules, list) and isinstance(rules[index], dict) else None
        )
        where = f"rule {named!r} (rules[{index}])" if named else f"rules[{index}]"
        loc = loc[2:]
    elif loc[:1] == ["default"]:
        where, loc = "default", loc[1:]
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    message = str(error["msg"]).removeprefix("Value error, ")
    parts = [p for p in (where, f"field {field}" if field else "") if p]
    return f"{', '.join(parts) or 'policy'}: {message}"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)
