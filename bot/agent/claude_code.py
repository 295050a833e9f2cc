"""Our approval hook in a Claude Code ``settings.json``: where the file is, merging the hook in, taking it out.

The merge and removal are pure functions on the parsed JSON; the file helpers
around them back the file up and replace it atomically. Everything that is
not ours (other keys, other tools' hooks, permissions) keeps its content and order.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import text
from ..approvals.model import Mode
from ..approvals.tools import GATED_TOOLS
from . import deadline
from .claude_settings import hook_groups
from .gate_command import GateCommand
from .hook_events import (
    BLOCK_IF_NOT_STARTED,
    PERMISSION_REQUEST,
    POST_TOOL_USE,
    PRE_TOOL_USE,
)

DEFAULT_HOOK_TIMEOUT = int(deadline.DEFAULT_HOOK_TIMEOUT)
"""Claude Code's own default for a command hook's ``timeout``, as settings files write it."""
APPROVERS = (PERMISSION_REQUEST, PRE_TOOL_USE)
"""The events whose hook decides a call: one of them, never both."""
AFTER_TOOL_TIMEOUT = 30
"""The ``timeout`` of the PostToolUse companion: it only reads and ends a request, never waits."""

_PYTHON = re.compile(r"python[0-9.]*")


class SettingsError(Exception):
    """The settings file cannot be changed safely (not JSON, or ``hooks`` of another shape)."""


@dataclass(frozen=True)
class HookSpec:
    """The hook ``install`` writes: its event, and the gate's options."""

    defer: bool = False
    hook_timeout: int = DEFAULT_HOOK_TIMEOUT
    agent_name: str = ""
    requested_by: str = ""
    channel: str = ""
    timeout: float | None = None
    python: str = sys.executable
    """Absolute path of the interpreter that has this package: the hook runs it from any folder."""

    @property
    def event(self) -> str:
        return PRE_TOOL_USE if self.defer else PERMISSION_REQUEST

    def groups(self) -> dict[str, dict[str, Any]]:
        """Event → the matcher group holding our hook alone.

        PermissionRequest fires only where Claude Code would prompt, so every tool, and
        comes with a PostToolUse companion: in a terminal, a Yes to Claude Code's own
        prompt does not stop the hook, and the call running is how the gate learns of it
        (``gate._after_tool``). PreToolUse fires for every call, so only the tools that
        change something (as the Agent SDK side gates)."""
        if self.defer:
            hook = self._hook(self.hook_timeout, block_if_not_started=True)
            return {PRE_TOOL_USE: {"matcher": GATED_TOOLS, "hooks": [hook]}}
        return {
            PERMISSION_REQUEST: {"matcher": "*", "hooks": [self._hook(self.hook_timeout)]},
            POST_TOOL_USE: {"matcher": "*", "hooks": [self._hook(AFTER_TOOL_TIMEOUT)]},
        }

    def _hook(self, timeout: int, *, block_if_not_started: bool = False) -> dict[str, Any]:
        gate = GateCommand(
            hook_timeout=timeout,
            mode=Mode.DEFER if self.defer else None,
            agent_name=self.agent_name,
            requested_by=self.requested_by,
            channel=self.channel,
            timeout=self.timeout,
            python=self.python,
        )
        return {
            "type": "command",
            "command": gate.shell(block_if_not_started=block_if_not_started),
            "timeout": timeout,
        }


@dataclass(frozen=True)
class Found:
    """One of our hooks in a settings file."""

    event: str
    matcher: str
    hook: Mapping[str, Any]

    @property
    def command(self) -> str:
        return str(self.hook.get("command", ""))


def is_ours(hook: Any) -> bool:
    """A hook whose command is exactly what ``HookSpec.command`` writes: ``<python> -m bot gate <options>``,
    nothing more (no other program, nothing a shell would read otherwise). A command that merely
    mentions the gate is someone else's: never removed, never run by ``doctor``."""
    command = hook.get("command") if isinstance(hook, dict) else None
    if not isinstance(command, str):
        return False
    command = command.removesuffix(BLOCK_IF_NOT_STARTED)
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    return (
        len(words) >= 4
        and shlex.join(words) == command
        and words[1:4] == ["-m", "bot", "gate"]
        # An interpreter by absolute path, or by name on the PATH; never one relative to a folder.
        and (os.path.isabs(words[0]) or "/" not in words[0])
        and bool(_PYTHON.fullmatch(os.path.basename(words[0])))
        and all(not w.startswith("-") or w in _GATE_OPTIONS for w in words[4:])
    )


_GATE_OPTIONS = frozenset(
    {
        "--mode",
        "--wait",
        "--hook-timeout",
        "--timeout",
        "--agent-name",
        "--requested-by",
        "--channel",
        "--cost-estimator",
        "--allow-read-only",
    }
)


def check_shape(settings: Any) -> None:
    """``SettingsError`` unless ``settings`` is an object whose ``hooks`` Claude Code could read."""
    if not isinstance(settings, dict):
        raise SettingsError(text.setup.SETTINGS_NOT_OBJECT)
    hooks = settings.get("hooks", {})
    if not isinstance(hooks, dict):
        raise SettingsError(text.setup.settings_bad_hooks("hooks", "an object"))
    for event, groups in hooks.items():
        if not isinstance(groups, list):
            raise SettingsError(text.setup.settings_bad_hooks(f"hooks.{event}", "a list"))
        for i, group in enumerate(groups):
            if not isinstance(group, dict) or not isinstance(group.get("hooks", []), list):
                raise SettingsError(
                    text.setup.settings_bad_hooks(f"hooks.{event}[{i}]", 'an object with a "hooks" list')
                )


def find(settings: Mapping[str, Any]) -> list[Found]:
    """Our hooks, in file order."""
    check_shape(settings)
    return [
        Found(event, str(group.get("matcher", "")), hook)
        for event, group, hook in _hooks(settings)
        if is_ours(hook)
    ]


def others(settings: Mapping[str, Any], event: str) -> list[Mapping[str, Any]]:
    """The hooks of ``event`` that are not ours."""
    return [
        hook for group in hook_groups(settings, event) for hook in group.get("hooks", []) if not is_ours(hook)
    ]


def _hooks(settings: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any], Any]]:
    for event, groups in settings.get("hooks", {}).items():
        for group in groups:
            for hook in group.get("hooks", []):
                yield event, group, hook


def remove(settings: Mapping[str, Any]) -> tuple[dict[str, Any], list[Found]]:
    """A copy without our hooks; drops only the groups, events and ``hooks`` that this leaves empty."""
    removed = find(settings)
    result = copy.deepcopy(dict(settings))
    if not removed:
        return result, []
    hooks = result["hooks"]
    for event in list(hooks):
        kept_groups = []
        for group in hooks[event]:
            kept = [hook for hook in group.get("hooks", []) if not is_ours(hook)]
            if kept or not any(is_ours(hook) for hook in group.get("hooks", [])):
                kept_groups.append({**group, "hooks": kept} if "hooks" in group else group)
        if kept_groups or not hooks[event]:
            hooks[event] = kept_groups
        else:
            del hooks[event]
    if not hooks:
        del result["hooks"]
    return result, removed


def install(settings: Mapping[str, Any], spec: HookSpec) -> tuple[dict[str, Any], list[Found]]:
    """A copy holding our hook as ``spec`` says, and the hooks of ours it replaced.

    Returns ``settings`` unchanged (equal) when it already holds exactly that
    hook and no other of ours. Never both kinds: a PermissionRequest hook and a
    PreToolUse gate would each ask about the same call.
    """
    ours = find(settings)
    want = spec.groups()
    if len(ours) == len(want) and all(
        any(group == wanted for group in settings["hooks"].get(event, [])) for event, wanted in want.items()
    ):
        return copy.deepcopy(dict(settings)), []
    result, replaced = remove(settings)
    for event, group in want.items():
        result.setdefault("hooks", {}).setdefault(event, []).append(group)
    return result, replaced


# -- files --------------------------------------------------------------------


def load(path: Path) -> dict[str, Any] | None:
    """The parsed file, None if it does not exist; ``SettingsError`` if it cannot be changed safely."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(text.setup.settings_unreadable(path, exc)) from exc
    try:
        settings = json.loads(raw)
    except ValueError as exc:
        raise SettingsError(text.setup.settings_not_json(path, exc)) from exc
    try:
        check_shape(settings)
    except SettingsError as exc:
        raise SettingsError(f"{path}: {exc}") from None
    return settings


def save(path: Path, settings: Mapping[str, Any]) -> Path | None:
    """Back the file up (``<name>.<UTC time>.bak`` beside it), then replace it atomically; the backup's path.

    A symlinked file (dotfile managers) is written where the link points. A
    new file gets its folders created and no backup.
    """
    target = path.resolve() if path.is_symlink() else path
    target.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    try:
        mode = target.stat().st_mode & 0o7777
        backup = _backup_name(target)
        # Private from the start (the file may hold keys in "env"), then the original's mode.
        with os.fdopen(os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as copy_:
            copy_.write(target.read_bytes())
        os.chmod(backup, mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    data = json.dumps(settings, indent=2, ensure_ascii=False) + "\n"
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return backup


def _backup_name(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    backup = path.with_name(f"{path.name}.{stamp}.bak")
    n = 1
    while backup.exists():  # two changes within a second keep both backups
        backup = path.with_name(f"{path.name}.{stamp}-{n}.bak")
        n += 1
    return backup
