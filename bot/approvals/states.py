"""Where a request is in its life, and who other than a person can end it."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """Where a request is in its life. Only ``PENDING`` can change."""

    PENDING = "pending"
    APPROVED = "approved"
    ANSWERED = "answered"
    """A question (AskUserQuestion) answered in Slack: allowed with the answers."""
    DENIED = "denied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    UNDELIVERABLE = "undeliverable"

    @property
    def is_final(self) -> bool:
        return self is not State.PENDING


class Mode(StrEnum):
    """What an agent does while its request is pending."""

    WAIT = "wait"
    """The call waits in ``can_use_tool`` (or in the gate hook) until someone decides."""
    DEFER = "defer"
    """The gate answers ``defer``: the run stops and is resumed once someone decides."""


SYSTEM_ACTOR = "system"
"""``decided_by`` of transitions no person made (expiry, cancel, delivery)."""
POLICY_ACTOR = "policy"
"""``decided_by`` of requests the team policy allowed or denied without asking."""
TERMINAL_ACTOR = "terminal"
"""``decided_by`` of requests the person at a Claude Code terminal answered first
(``CANCELLED`` in Slack: nothing is decided there any more)."""
