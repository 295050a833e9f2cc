"""Keep the developer's own Claude settings out of the tests' agent runs."""

from __future__ import annotations

import os

import pytest

_INHERITED_PREFIXES = ("ANTHROPIC_", "CLAUDE_")


def clean_agent_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop inherited ``ANTHROPIC_*`` / ``CLAUDE_*`` / ``CLAUDECODE`` variables.

    The SDK hands the parent's whole environment to the CLI, so a developer's
    real key, base URL, model override or config dir would otherwise leak into
    the test run (or point it at the real API).
    """
    for name in list(os.environ):
        if name.startswith(_INHERITED_PREFIXES) or name == "CLAUDECODE":
            monkeypatch.delenv(name, raising=False)
