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
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import Field, ValidationError, field_validator

from .. import text
from . import bounds
from .policy_rule import Action, DefaultRule, Route, Rule, StrictModel, to_route
from .policy_values import SlackTarget, TeamId


class PolicyError(ValueError):
    """The policy file cannot be used; the message names the file, rule and field."""


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


class Policy(StrictModel):
    timezone: str = "UTC"
    """Time zone the daily budgets reset in (IANA name)."""
    rules: list[Rule] = Field(default_factory=list)
    default: DefaultRule = Field(default_factory=DefaultRule)
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

    def route_names(self) -> list[str]:
        """The name of every route this policy can pick (what names their spend counters)."""
        return [name for name, _rule in self._named()]

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
