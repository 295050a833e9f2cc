"""What an approval request is, independent of Slack and of Redis."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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


SYSTEM_ACTOR = "system"
"""``decided_by`` of transitions no person made (expiry, cancel, delivery)."""


def request_id_for(tool_use_id: str | None) -> str:
    """The request id for a tool call.

    Derived from ``tool_use_id`` so that asking again for the same call (a
    restarted agent, a resumed session) finds the same request without a
    second index key; random when the caller has no tool_use_id.
    """
    if not tool_use_id:
        return secrets.token_hex(12)
    return hashlib.sha256(tool_use_id.encode()).hexdigest()[:24]


def to_json(value: Any) -> str:
    """JSON for storage. ASCII-escaped: a tool input may hold lone surrogates
    (valid JSON, not encodable as UTF-8), and they must round-trip exactly."""
    return json.dumps(value, ensure_ascii=True)


def input_hash(tool_input: dict[str, Any]) -> str:
    """A stable fingerprint of a tool input, for the audit log."""
    canonical = json.dumps(tool_input, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class NewRequest:
    """What the agent side knows when it asks."""

    id: str
    """From ``request_id_for(tool_use_id)``."""
    tool_name: str
    tool_input: dict[str, Any]
    tool_use_id: str | None = None
    agent: str = ""
    """Who asks: the agent's name, plus the subagent id when there is one."""
    requested_by: str = ""
    """Slack user id of the person the agent acts for, if known."""
    channel: str = ""
    """Slack channel override; empty means the workers' APPROVAL_CHANNEL."""
    title: str = ""
    """The SDK's own one-line wording of the request, when it gives one."""
    timeout: float = 0
    """Seconds until the request expires; 0 waits forever."""
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    """Permission updates "Always allow" may grant (``rules.safe_suggestions``)."""


@dataclass(frozen=True)
class ApprovalRequest:
    """A stored request, as any process reads it back."""

    id: str
    state: State
    tool_name: str
    tool_input: dict[str, Any]
    input_hash: str
    created_at: float
    tool_use_id: str = ""
    agent: str = ""
    requested_by: str = ""
    channel: str = ""
    title: str = ""
    deadline: float = 0
    """Epoch seconds it expires at; 0 means never."""
    posted_channel: str = ""
    ts: str = ""
    """Slack message timestamp once posted."""
    decided_by: str = ""
    decided_by_name: str = ""
    decided_at: float = 0
    reason: str = ""
    updated_input: dict[str, Any] | None = field(default=None)
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    always: bool = False
    """Approved with "Always allow": the suggestions are granted too."""

    @property
    def posted(self) -> bool:
        return bool(self.ts)

    @property
    def modified(self) -> bool:
        """Approved with an input other than the one the agent asked for."""
        return self.updated_input is not None and self.updated_input != self.tool_input

    @classmethod
    def from_redis(cls, raw: dict[str, str]) -> ApprovalRequest:
        """Build from the request hash (decoded strings)."""
        updated = raw.get("updated_input") or ""
        return cls(
            id=raw["id"],
            state=State(raw["state"]),
            tool_name=raw["tool_name"],
            tool_input=json.loads(raw["tool_input"]),
            input_hash=raw["input_hash"],
            created_at=float(raw["created_at"]),
            tool_use_id=raw.get("tool_use_id", ""),
            agent=raw.get("agent", ""),
            requested_by=raw.get("requested_by", ""),
            channel=raw.get("channel", ""),
            title=raw.get("title", ""),
            deadline=float(raw.get("deadline") or 0),
            posted_channel=raw.get("posted_channel", ""),
            ts=raw.get("ts", ""),
            decided_by=raw.get("decided_by", ""),
            decided_by_name=raw.get("decided_by_name", ""),
            decided_at=float(raw.get("decided_at") or 0),
            reason=raw.get("reason", ""),
            updated_input=json.loads(updated) if updated else None,
            suggestions=json.loads(raw.get("suggestions") or "[]"),
            always=raw.get("always") == "1",
        )


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

    def __post_init__(self) -> None:
        if not self.state.is_final:
            raise ValueError("a decision must end the request")

    @property
    def audit_event(self) -> str:
        """The audit log's name for this transition."""
        if self.state is State.APPROVED and self.always:
            return "always_allowed"
        if self.state is State.APPROVED and self.updated_input is not None:
            return "modified"
        return self.state.value


@dataclass(frozen=True)
class Transition:
    """The result of trying to apply a ``Decision``."""

    won: bool
    request: ApprovalRequest | None
    """The request after the attempt; ``None`` if no such request exists."""
