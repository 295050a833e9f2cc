"""What ``SlackApprover`` adds to an Agent SDK run: the gate hook in its settings, told the run's
allow rules, and the refusal of any other approver that would race ``can_use_tool``."""

from __future__ import annotations

import dataclasses
import json
import pkgutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from claude_agent_sdk import CanUseTool, ClaudeAgentOptions

from .. import text
from ..approvals.tools import GATED_TOOLS
from ..redis_topology import Topology
from . import claude_settings
from .gate_command import GateCommand
from .hook_events import PRE_TOOL_USE
from .passthrough import command_line_rules

GATE_HOOK_TIMEOUT = 60
"""Seconds the CLI gives the gate hook: with ``--wait 0`` it only stores the
request and lets a worker apply the policy (a few seconds at most). The gate
is told the same number (``--hook-timeout``) and answers before it: a hook
that outlives its timeout gives no decision, and the CLI's own rules decide."""


def gate_settings(
    base: dict[str, Any] | str | None, gate: GateCommand, *, tools: str, allow: Iterable[str]
) -> str:
    """``base`` (a dict, JSON or a file path) with the gate hook added for ``tools``, as JSON.

    The gate is told ``allow`` and ``base``'s own ``permissions.allow``: calls they match are
    left to Claude Code. ``ValueError`` if ``base`` installs a ``PermissionRequest`` hook."""
    if isinstance(base, str):
        base = json.loads(base if base.lstrip().startswith("{") else Path(base).read_text(encoding="utf-8"))
    merged = json.loads(json.dumps(base or {}))
    if claude_settings.has_permission_hook(merged):
        # With can_use_tool beside it, the first answer wins: a quick allow beats the team's deny.
        raise ValueError(text.agent.racing_hook("settings"))
    hooks = merged.setdefault("hooks", {}).setdefault(PRE_TOOL_USE, [])
    rules = command_line_rules([*allow, *claude_settings.allow_rules(merged)])
    command = dataclasses.replace(gate, allow=tuple(rules)).shell(block_if_not_started=True)
    hooks.append(
        {"matcher": tools, "hooks": [{"type": "command", "command": command, "timeout": gate.hook_timeout}]}
    )
    return json.dumps(merged)


def hook_env(redis_url: str | None, team: str, topology: Topology | None) -> dict[str, str]:
    """What the gate hook reads from its environment: how to reach Redis as the approver
    does (in the environment, never in a command line) and, in OAuth mode, the workspace
    its requests are for."""
    env = {"REDIS_URL": redis_url, **(topology or Topology()).environment()} if redis_url else {}
    if team:
        env["SLACK_TEAM_ID"] = team
    return env


def gated_options(
    options: ClaudeAgentOptions,
    can_use_tool: CanUseTool,
    gate: GateCommand,
    hook_env: dict[str, str],
) -> ClaudeAgentOptions:
    """``options`` with ``can_use_tool``, the gate hook and ``hook_env`` (``hook_env()``) set.

    The gate is told ``allowed_tools`` and the ``permissions.allow`` of ``settings`` and of the
    settings files ``setting_sources`` loads. ``ValueError`` if one of those installs a
    ``PermissionRequest`` hook."""
    base = options.settings
    if base and not base.lstrip().startswith("{") and options.cwd is not None:
        base = str(Path(options.cwd) / base)  # the SDK reads a settings path relative to cwd
    env = {**hook_env, **options.env}  # what the caller set wins
    files = claude_settings.read_all(claude_settings.loaded_files(options.cwd, options.setting_sources, env))
    if racing := [path for path, settings in files if claude_settings.has_permission_hook(settings)]:
        raise ValueError(text.agent.racing_hook(", ".join(map(str, racing))))
    allow = [
        *options.allowed_tools,
        *(rule for _, settings in files for rule in claude_settings.allow_rules(settings)),
    ]
    return dataclasses.replace(
        options,
        can_use_tool=can_use_tool,
        settings=gate_settings(base, gate, tools=GATED_TOOLS, allow=allow),
        env=env,
    )


def importable_name(function: object) -> str:
    """``module:qualname`` the gate process can import, or ValueError."""
    name = f"{getattr(function, '__module__', '')}:{getattr(function, '__qualname__', '')}"
    try:
        found = pkgutil.resolve_name(name)
    except (ImportError, AttributeError, ValueError):
        found = None
    if found is not function:
        raise ValueError(
            "the gate hook runs in its own process and imports cost_estimator by name: "
            f"make it a module-level function (got {function!r})"
        )
    return name
