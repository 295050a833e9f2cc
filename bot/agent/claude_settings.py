"""Claude Code's settings files: where they are, which ones a run loads, and what in them
concerns the gate (``permissions.allow`` rules, ``PermissionRequest`` hooks)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .hook_events import PERMISSION_REQUEST


def user_settings(environ: Mapping[str, str]) -> Path:
    """Claude Code reads ``$CLAUDE_CONFIG_DIR/settings.json`` when that is set, and then not ``~/.claude``
    (checked with CLI 2.1.337: a hook in ``~/.claude/settings.json`` did not fire with it set)."""
    config_dir = environ.get("CLAUDE_CONFIG_DIR")
    return Path(config_dir) / "settings.json" if config_dir else Path.home() / ".claude" / "settings.json"


def project_settings(cwd: Path) -> Path:
    return cwd / ".claude" / "settings.json"


def project_local_settings(cwd: Path) -> Path:
    return cwd / ".claude" / "settings.local.json"


def loaded_files(
    cwd: str | os.PathLike[str] | None, sources: Iterable[str] | None, env: Mapping[str, str]
) -> list[Path]:
    """The settings files the CLI reads for ``setting_sources`` (None: all of them, as the CLI does).

    ``env`` is the run's ``ClaudeAgentOptions.env``, on top of this process's environment."""
    wanted = {"user", "project", "local"} if sources is None else set(sources)
    project = Path(cwd) if cwd is not None else Path.cwd()
    config_dir = env.get("CLAUDE_CONFIG_DIR") or os.environ.get("CLAUDE_CONFIG_DIR") or ""
    files = {
        "user": user_settings({"CLAUDE_CONFIG_DIR": config_dir}),
        "project": project_settings(project),
        "local": project_local_settings(project),
    }
    return [path for source, path in files.items() if source in wanted]


def read_all(paths: Iterable[Path]) -> list[tuple[Path, Any]]:
    """Each file's parsed JSON, read once; a missing or unreadable file is left out."""
    parsed = []
    for path in paths:
        try:
            parsed.append((path, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError):
            continue
    return parsed


def allow_rules(settings: Any) -> list[str]:
    """The ``permissions.allow`` rules of one Claude Code settings object (anything else: none)."""
    permissions = settings.get("permissions") if isinstance(settings, dict) else None
    allow = permissions.get("allow") if isinstance(permissions, dict) else None
    return [rule for rule in allow if isinstance(rule, str)] if isinstance(allow, list) else []


def hook_groups(settings: Any, event: str) -> list[dict[str, Any]]:
    """The matcher groups of ``event`` in parsed settings; none where the shape is not Claude Code's."""
    hooks = settings.get("hooks") if isinstance(settings, dict) else None
    groups = hooks.get(event) if isinstance(hooks, dict) else None
    return [group for group in groups if isinstance(group, dict)] if isinstance(groups, list) else []


def has_permission_hook(settings: Any) -> bool:
    """Whether Claude Code settings (parsed JSON) install any ``PermissionRequest`` hook."""
    return any(group.get("hooks") for group in hook_groups(settings, PERMISSION_REQUEST))
