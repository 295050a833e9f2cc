"""The agent side: what runs inside the process that hosts a Claude agent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .approver import SlackApprover

__all__ = ["SlackApprover"]


def __getattr__(name: str) -> Any:
    # Lazy for the same reason as the package: the gate hook imports bot.agent.gate.
    if name == "SlackApprover":
        from .approver import SlackApprover

        return SlackApprover
    raise AttributeError(f"module 'bot.agent' has no attribute {name!r}")
