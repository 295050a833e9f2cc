"""Team approval of Claude agent tool calls, from Slack.

Agent side: ``SlackApprover`` (needs only Redis). Bot side: ``python -m bot serve``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .agent import SlackApprover
    from .settings import Settings

__all__ = ["Settings", "SlackApprover"]


def __getattr__(name: str) -> Any:
    # Imported on first use: ``python -m bot gate`` runs before every gated
    # tool call and must not load the Agent SDK it does not need.
    if name == "SlackApprover":
        from .agent import SlackApprover

        return SlackApprover
    if name == "Settings":
        from .settings import Settings

        return Settings
    raise AttributeError(f"module 'bot' has no attribute {name!r}")
