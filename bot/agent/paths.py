"""Where a tool call's paths really lead, resolved on the agent's host.

Only the agent's host can follow its symlinks: the bot workers that apply
the team's path rules run elsewhere. So the agent side resolves each path
field when it asks, and the rules match the written path and the resolved
one (as Claude Code's own permission checks do): a symlink, or ``..`` after
a symlink, cannot carry a call past a rule.
"""

from __future__ import annotations

import os
from typing import Any

PATH_FIELDS = ("file_path", "notebook_path", "path")
"""Input fields of Claude Code's file tools that name a path."""


def resolve_paths(tool_input: dict[str, Any], cwd: str | None = None) -> dict[str, str]:
    """Each path field of ``tool_input`` that resolves elsewhere than it is written.

    Relative paths are taken from ``cwd`` (the CLI's working directory when
    known, else this process's). A path that cannot be resolved is left out.
    """
    resolved = {}
    for name in PATH_FIELDS:
        written = tool_input.get(name)
        if not isinstance(written, str) or not written or "\x00" in written:
            continue
        try:
            base = cwd or os.getcwd()
            real = os.path.realpath(os.path.join(base, os.path.expanduser(written)))
        except (OSError, ValueError):
            continue
        if real != written:
            resolved[name] = real
    return resolved
