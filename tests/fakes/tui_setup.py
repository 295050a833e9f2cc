"""What the interactive Claude Code TUI needs to open on its prompt in a test.

A pre-seeded config dir (no first-run screens) and an environment without the
caller's Claude/Anthropic settings or tmux links.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

_INHERITED_PREFIXES = ("ANTHROPIC_", "CLAUDE_")
# TMUX/TMUX_PANE would make a nested tmux client talk to the caller's server.
_DROPPED = {"CLAUDECODE", "TMUX", "TMUX_PANE"}


def seed_config_dir(config_dir: Path, cwd: Path, api_key: str = "test") -> None:
    """Write ``$CLAUDE_CONFIG_DIR/.claude.json`` so the TUI opens on its prompt.

    Verified on CLI 2.1.337: ``hasCompletedOnboarding`` skips the theme picker
    and login screens, ``customApiKeyResponses.approved`` (the key's last 20
    characters) skips "Do you want to use this API key?", and the project's
    ``hasTrustDialogAccepted`` skips "Do you trust the files in this folder?".
    """
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / ".claude.json"
    # Merge, so a second TUI on the same config dir (e.g. --resume) keeps the
    # state the first one wrote.
    state = json.loads(path.read_text()) if path.exists() else {}
    state["hasCompletedOnboarding"] = True
    state.setdefault("theme", "dark")
    approved = state.setdefault("customApiKeyResponses", {}).setdefault("approved", [])
    if api_key[-20:] not in approved:
        approved.append(api_key[-20:])
    project = state.setdefault("projects", {}).setdefault(str(cwd.resolve()), {})
    project["hasTrustDialogAccepted"] = True
    path.write_text(json.dumps(state))


def clean_environ() -> dict[str, str]:
    """The caller's environment without Claude/Anthropic settings or tmux links."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_INHERITED_PREFIXES) and name not in _DROPPED
    }
