"""A policy in words, for ``python -m bot policy check`` and ``policy explain``.

Pure functions over ``Policy``: matching and routing are ``Policy.tried`` and
``Policy.route`` themselves, so what these lines say is what a worker does.
Each function returns plain lines, stable enough for scripts and tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .model import is_group
from .policy import Policy, Tried
from .policy_rule import Action, OnTimeout, Route, Rule, to_route
from .tools import COMMAND, FILE_PATH

DEFAULT_CHANNEL = "APPROVAL_CHANNEL"
"""Where a rule without ``channel`` posts: the worker's setting, unknown to a policy file."""


def duration(seconds: float) -> str:
    """``5400`` → ``1h30m``: the policy file's own notation."""
    left = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts) or "0s"


def dollars(amount: float) -> str:
    return f"${amount:,.2f}".replace(".00", "")


def targets(ids: tuple[str, ...] | list[str], *, joiner: str = "or") -> str:
    """``U0ALICE, U0BOB or members of S0SRE``."""
    named = [f"members of {t}" if is_group(t) else t for t in ids]
    if len(named) < 2:
        return "".join(named)
    return f"{', '.join(named[:-1])} {joiner} {named[-1]}"


def _pattern(value: Any) -> str:
    return f"/{getattr(value, 'pattern', value)}/"


def matching(rule: Rule) -> str:
    """Which calls ``rule`` applies to: ``Bash calls whose command matches /^kubectl /``."""
    what = "calls of any tool" if rule.tool == "*" else f"{rule.tool} calls"
    conditions = []
    if rule.command is not None:
        conditions.append(f"whose command matches {_pattern(rule.command)}")
    if rule.file_path is not None:
        conditions.append(f"whose file_path matches {rule.file_path}")
    for key, pattern in rule.input.items():
        conditions.append(f"whose {key} matches {_pattern(pattern)}")
    if rule.when_cost_over is not None:
        conditions.append(f"costing more than {dollars(rule.when_cost_over)}")
    return " ".join([what, " and ".join(conditions)]).strip()


def why_not(tried: Tried, tool_name: str, tool_input: dict[str, Any]) -> str:
    """Why the call fails the field ``tried.missed`` names."""
    rule, missed = tried.rule, tried.missed
    if missed == "tool":
        return f"the tool is {tool_name}, not {rule.tool}"
    if missed == "command":
        command = tool_input.get(COMMAND)
        if not isinstance(command, str):
            return "the input has no command"
        return f"the command does not match {_pattern(rule.command)}"
    if missed == "file_path":
        path = tool_input.get(FILE_PATH)
        if not isinstance(path, str):
            return "the input has no file_path"
        return f"file_path {path} does not match {rule.file_path}"
    if missed is not None and missed.startswith("input."):
        key = missed.removeprefix("input.")
        if tool_input.get(key) is None:
            return f"the input has no {key}"
        return f"{key} does not match {_pattern(rule.input[key])}"
    if missed == "when_cost_over":
        limit = dollars(rule.when_cost_over or 0)
        if tried.cost is None:
            return f"the call's cost is unknown (the rule needs more than {limit})"
        return f"the cost, {dollars(tried.cost)}, is not more than {limit}"
    return "it does not match"


def outcome(route: Route, *, requested_by: str = "") -> list[str]:
    """What happens to a call on ``route``: the first line says what, the rest how."""
    if route.action is Action.ALLOW:
        return ["allowed at once: nothing is posted, the call runs (audited)"]
    if route.action is Action.DENY:
        told = f'; the model is told: "{route.message}"' if route.message else ""
        return [f"denied at once: nothing is posted{told}"]
    lines = [f"asked in channel {route.channel or DEFAULT_CHANNEL}"]
    if route.mention:
        lines.append(f"paged when posted: {targets(route.mention, joiner='and')}")
    deciders = targets(route.approvers) if route.approvers else "anyone in the channel"
    lines.append(f"who may decide: {deciders}")
    if route.required > 1:
        lines.append(f"{route.required} different people must approve; one deny vetoes")
    else:
        lines.append("one approval decides; one deny vetoes")
    whom = requested_by or "the person the agent works for"
    if route.allow_self:
        lines.append(f"{whom} may approve it too (allow_self_approval)")
    else:
        lines.append(f"{whom} may not approve it, only deny or answer")
    lines.extend(_deadlines(route))
    if route.cost is not None:
        lines.append(f"cost: {dollars(route.cost)}")
    if route.daily_budget is not None:
        lines.append(f"daily budget: {dollars(route.daily_budget)} approved a day on this rule")
    if route.mode is not None:
        lines.append(f"mode: {route.mode.value}")
    return lines


def _deadlines(route: Route) -> list[str]:
    lines = []
    for step in route.escalation:
        lines.append(
            f"after {duration(step.after)}: escalated to {targets(step.approvers)}, "
            "mentioned in the thread and able to decide from then on"
        )
    if not route.timeout:
        lines.append("timeout: none of its own (the agent's APPROVAL_TIMEOUT still applies)")
    elif route.on_timeout is OnTimeout.ESCALATE:
        lines.append(
            f"timeout: after {duration(route.timeout)} every escalation step not yet fired fires, "
            f"then it is denied {duration(route.timeout)} later"
        )
    else:
        lines.append(
            f"timeout: denied after {duration(route.timeout)} (the agent's APPROVAL_TIMEOUT caps it)"
        )
    return lines


def _rule_cost(rule: Rule) -> list[str]:
    lines = []
    if rule.cost_field:
        lines.append(
            f"cost: the agent's estimate, else the input's {rule.cost_field}"
            + (f", else {dollars(rule.cost)}" if rule.cost is not None else "")
        )
    elif rule.cost is not None:
        lines.append(f"cost: the agent's estimate, else {dollars(rule.cost)} a call")
    return lines


def describe_policy(policy: Policy, path: str | Path) -> list[str]:
    """``policy check``: the file is valid, then each rule in order and the default, in words."""
    count = len(policy.rules)
    rules = f"{count} rule{'' if count == 1 else 's'}"
    lines = [f"{path}: valid, {rules} and a default, daily budgets in {policy.timezone}"]
    named = [(rule.name or f"rules[{i}]", rule) for i, rule in enumerate(policy.rules)]
    for index, (name, rule) in enumerate(named):
        lines.append(f"{index + 1}. {name}: {matching(rule)}")
        lines.extend(_indented(rule, name))
    default = policy.default.name or "default"
    lines.append(f"default ({default}): every other call")
    lines.extend(_indented(policy.default, default))
    if policy.admins:
        lines.append(f"admins (may remove any team allow-list rule): {targets(policy.admins, joiner='and')}")
    if policy.trusted_teams:
        lines.append(f"trusted workspaces and organisations: {', '.join(policy.trusted_teams)}")
    return lines


def _indented(rule: Rule, name: str) -> list[str]:
    route = to_route(name, rule, None)
    lines = outcome(route)
    lines = [f"→ {lines[0]}", *(f"  {line}" for line in lines[1:])]
    costs = [f"  {line}" for line in _rule_cost(rule)]
    return [f"   {line}" for line in (*lines, *costs)]


def explain(
    policy: Policy,
    tool_name: str,
    tool_input: dict[str, Any],
    estimate: float | None = None,
    *,
    requested_by: str = "",
) -> list[str]:
    """``policy explain``: each rule tried in order, why it did not match, then what happens."""
    call = json.dumps(tool_input, ensure_ascii=False, sort_keys=True)
    lines = [
        f"call: {tool_name} {call}" + (f", estimated {dollars(estimate)}" if estimate is not None else "")
    ]
    tried = policy.tried(tool_name, tool_input, estimate)
    for index, step in enumerate(tried):  # in the policy's order: the i-th tried is rules[i]
        where = "default" if step.rule is policy.default else f"rule {index + 1}"
        if step.unpriced:
            lines.append(f"{where} ({step.name}): its cost cannot be read: {step.unpriced}")
        elif step.missed is None:
            lines.append(f"{where} ({step.name}): matches")
        else:
            lines.append(f"{where} ({step.name}): no, {why_not(step, tool_name, tool_input)}")
    route = policy.route(tool_name, tool_input, estimate)
    happens = outcome(route, requested_by=requested_by)
    lines.append(f"→ {happens[0]}")
    lines.extend(f"  {line}" for line in happens[1:])
    if route.action is Action.ASK:
        lines.append(
            "  the team allow-list (Always allow) is checked after the rules and may approve it at once"
        )
    return lines
