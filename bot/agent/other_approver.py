"""Whether the Claude Code process running this hook has another approver that would race it.

With ``--permission-prompt-tool`` (the Agent SDK's ``can_use_tool`` passes
``--permission-prompt-tool stdio``; an MCP approval tool passes its name),
Claude Code asks that approver and the ``PermissionRequest`` hooks at once,
and the first answer wins: an instant allow from one beats a slower deny
from the other, and the tool runs (DESIGN.md §4). The hook cannot see Claude
Code's options, but on Linux it can read the command line of the process
that started it. ``SlackApprover.options()`` refuses such settings before a run starts.
"""

from __future__ import annotations

import os

PROMPT_TOOL_FLAG = "--permission-prompt-tool"
_ANCESTORS = 4
"""Claude Code runs a hook through a shell, which may run another: look this far up."""


def prompt_tool(start: int | None = None) -> str | None:
    """The ``--permission-prompt-tool`` of the nearest ancestor started with one; None if none is
    (or ``/proc`` cannot be read: elsewhere than Linux this cannot be detected)."""
    pid = os.getppid() if start is None else start
    for _ in range(_ANCESTORS):
        if pid <= 0:
            return None
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                argv = [a.decode(errors="replace") for a in cmdline.read().split(b"\0")]
        except OSError:
            return None
        for index, arg in enumerate(argv):
            if arg == PROMPT_TOOL_FLAG:
                return argv[index + 1] if index + 1 < len(argv) else ""
            if arg.startswith(PROMPT_TOOL_FLAG + "="):
                return arg.partition("=")[2]
        if pid == 1:
            return None  # the top (in a container, Claude Code itself may be pid 1: read above)
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                pid = int(stat.read().rpartition(b")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            return None
    return None
