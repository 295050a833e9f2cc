"""A decision someone asks for, and what came of it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .names import AuditEvent
from .states import POLICY_ACTOR, SYSTEM_ACTOR, TERMINAL_ACTOR, State

if TYPE_CHECKING:
    from .model import ApprovalRequest


@dataclass(frozen=True)
class Decision:
    """A transition out of ``PENDING`` that someone (or something) asks for."""

    state: State
    actor: str = SYSTEM_ACTOR
    """Slack user id, or ``SYSTEM_ACTOR``."""
    actor_name: str = ""
    reason: str = ""
    updated_input: dict[str, Any] | None = None
    always: bool = False
    """Approve and grant the request's suggested permission rules."""
    stop: bool = False
    """Deny and end the agent's run (a deny only)."""
    revision: int | None = None
    """The revision the person saw; an approval or answer of an older one is refused."""
    event: AuditEvent | None = None
    """The audit event, when the state alone does not name it (``answered_in_terminal``)."""

    def __post_init__(self) -> None:
        if not self.state.is_final:
            raise ValueError("a decision must end the request")
        if self.stop and self.state is not State.DENIED:
            raise ValueError("only a deny can stop the run")

    @property
    def by_person(self) -> bool:
        """A person's decision: approver rules and N-of-M apply."""
        return self.actor not in (SYSTEM_ACTOR, POLICY_ACTOR, TERMINAL_ACTOR)

    @property
    def audit_event(self) -> AuditEvent:
        """The audit log's name for this transition."""
        if self.event is not None:
            return self.event
        if self.state is State.APPROVED and self.always:
            return AuditEvent.ALWAYS_ALLOWED
        if self.stop:
            return AuditEvent.DENIED_AND_STOPPED
        if self.state is State.APPROVED and self.updated_input is not None:
            return AuditEvent.MODIFIED
        return AuditEvent(self.state.value)


class Refusal(StrEnum):
    """Why a person's decision was not taken (the request did not change)."""

    NOT_APPROVER = "not_approver"
    SELF = "self"
    """The person the agent acts for tried to approve their own request."""
    STALE = "stale"
    """Approved a version of the request that was edited since."""
    VOTED = "voted"
    """Approved twice: each person counts once."""
    UNKNOWN_GROUPS = "unknown_groups"
    """An approver group's membership is not cached; refresh it and try again."""
    NO_ALWAYS = "no_always"
    """Always allow on a request that needs more than one approval."""
    INVALID = "invalid"
    """The request's stored cost cannot be counted against its budget: it can only be denied."""
    CHANGED = "changed"
    """The request's cost or route changed twice while an approval was being recorded (``RequestStore.decide``)."""
    OTHER_WORKSPACE = "other_workspace"
    """The person's workspace is not the request's (``NewRequest.team``)."""


@dataclass(frozen=True)
class Transition:
    """The result of trying to apply a ``Decision``."""

    won: bool
    request: ApprovalRequest | None
    """The request after the attempt; ``None`` if no such request exists."""
    refused: Refusal | None = None
    groups: tuple[str, ...] = ()
    """With ``UNKNOWN_GROUPS``: the groups to look up."""
    votes: tuple[int, int] | None = None
    """An approval or answer counted as a vote: (votes so far, required)."""
