"""The agent side: what runs inside the process that hosts a Claude agent."""

from .approver import SlackApprover

__all__ = ["SlackApprover"]
