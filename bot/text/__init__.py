"""Every sentence a person or the model reads, in one place: one module per place they meet it.

Call sites name the place: ``text.message.HEADER``, ``text.decision.deny_message(request)``.
"""

from . import agent, audit, decision, demo, lists, message, modals, notation, refusals, setup

__all__ = [
    "agent",
    "audit",
    "decision",
    "demo",
    "lists",
    "message",
    "modals",
    "notation",
    "refusals",
    "setup",
]
