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

from ..approvals.tools import PATH_FIELDS


def resolve_paths(tool_input: dict[str, Any]) -> dict[str, str]:
    """Each absolute path field of ``tool_input`` that resolves elsewhere than it is written.

    Claude Code makes its file tools' paths absolute before it asks. A
    relative path (an MCP tool's) is left out: the gate and ``can_use_tool``
    run in different directories, and each must fingerprint the call alike.
    A path that cannot be resolved is left out too.
    """
    resolved = {}
    for name in PATH_FIELDS:
        written = tool_input.get(name)
        if not isinstance(written, str) or not os.path.isabs(written) or "\x00" in written:
            continue
        try:
            real = os.path.realpath(written)
        except (OSError, ValueError):
            continue
        if real != written:
            resolved[name] = real
    return resolved
