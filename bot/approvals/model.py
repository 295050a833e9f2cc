"""What an approval request is, independent of Slack and of Redis."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from .decision import Decision, Refusal, Transition
from .states import POLICY_ACTOR, SYSTEM_ACTOR, TERMINAL_ACTOR, Mode, State

# Decisions (``decision``) and states (``states``) have homes of their own; the
# domain's vocabulary is imported from here.
__all__ = [
    "POLICY_ACTOR",
    "SYSTEM_ACTOR",
    "TERMINAL_ACTOR",
    "ApprovalRequest",
    "Decision",
    "Mode",
    "NewRequest",
    "Refusal",
    "Reply",
    "State",
    "Transition",
    "Vote",
    "call_hash",
    "input_hash",
    "is_group",
    "mismatch_id",
    "request_id_for",
    "to_json",
]


def is_group(target: str) -> bool:
    """A Slack user group id (``S…``), as opposed to a user."""
    return target.startswith("S")


def request_id_for(tool_use_id: str | None) -> str:
    """The request id for a tool call.

    Derived from ``tool_use_id`` so that asking again for the same call (a
    restarted agent, a resumed session) finds the same request without a
    second index key; random when the caller has no tool_use_id.
    """
    if not tool_use_id:
        return secrets.token_hex(12)
    return hashlib.sha256(tool_use_id.encode()).hexdigest()[:24]


def call_hash(tool_name: str, tool_input: dict[str, Any], resolved: dict[str, str] | None = None) -> str:
    """What a decision is about: the tool, its input, and where its paths lead.

    A stored decision is handed only to a call with the same fingerprint: the
    same ``tool_use_id`` with another input, or with a symlink re-pointed
    since, is another call."""
    canonical = json.dumps(
        [tool_name, tool_input, resolved or {}], sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def mismatch_id(request_id: str, call: str) -> str:
    """The request id of a call (fingerprint ``call``) that reuses another call's
    ``tool_use_id``: its own request, never the first one's decision."""
    return hashlib.sha256(f"{request_id}\n{call}".encode()).hexdigest()[:24]


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
    team: str = ""
    """The Slack workspace (``T…``) or org-wide install (``E…``) it is for; empty with one bot token."""
    title: str = ""
    """The SDK's own one-line wording of the request, when it gives one."""
    timeout: float = 0
    """Seconds until the request expires; 0 waits forever."""
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    """Permission updates "Always allow" may grant (``agent.permissions.safe_suggestions``)."""
    cost: float | None = None
    """Dollars, from the agent's cost estimator; None when it gave none."""
    mode: Mode = Mode.WAIT
    """The agent's choice; a policy rule's ``mode`` overrides it."""
    resolved: dict[str, str] = field(default_factory=dict)
    """Path fields of the input (``file_path``…) resolved on the agent's host
    (symlinks, ``..``): where the call really reads or writes."""


@dataclass(frozen=True)
class Vote:
    """One approval counted towards ``required`` (N-of-M)."""

    user: str
    name: str
    at: float


@dataclass(frozen=True)
class Reply:
    """A person's reply in the request's Slack thread."""

    ts: str
    user: str
    name: str
    text: str

    def to_json(self) -> str:
        return to_json({"user": self.user, "name": self.name, "text": self.text})

    @classmethod
    def from_json(cls, ts: str, raw: str) -> Reply:
        data = json.loads(raw)
        return cls(
            ts=ts,
            user=str(data.get("user", "")),
            name=str(data.get("name", "")),
            text=str(data.get("text", "")),
        )


@dataclass(frozen=True)
class ApprovalRequest:
    """A stored request, as any process reads it back."""

    id: str
    state: State
    tool_name: str
    tool_input: dict[str, Any]
    input_hash: str
    created_at: float
    call_hash: str = ""
    """``call_hash`` of what was asked (tool, input, resolved paths)."""
    tool_use_id: str = ""
    agent: str = ""
    requested_by: str = ""
    channel: str = ""
    team: str = ""
    """Whose request it is (``NewRequest.team``): only people of that workspace or organisation decide it."""
    title: str = ""
    deadline: float = 0
    """Epoch seconds it expires at; 0 means never."""
    posted_channel: str = ""
    ts: str = ""
    """Slack message timestamp once posted."""
    post_started: float = 0
    """When a worker first began posting it (0: never); a message may exist before ``ts`` is recorded."""
    decided_by: str = ""
    decided_by_name: str = ""
    decided_at: float = 0
    reason: str = ""
    updated_input: dict[str, Any] | None = field(default=None)
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    always: bool = False
    """Approved with "Always allow": the suggestions are granted too."""
    stop: bool = False
    """Denied with "Deny and stop": the agent's run ends too, not just this call."""
    cost: float | None = None
    mode: Mode = Mode.WAIT
    """The agent's mode, replaced by the rule's when the policy sets one."""
    resolved: dict[str, str] = field(default_factory=dict)
    """Path fields resolved on the agent's host (see ``NewRequest.resolved``)."""

    # What the team policy decided (set by the worker that posts it).
    routed: bool = False
    rule: str = ""
    approvers: tuple[str, ...] = ()
    """Users (``U…``) and groups (``S…``) who may decide; empty means anyone."""
    mention: tuple[str, ...] = ()
    required: int = 1
    allow_self: bool = False
    timeout_at: float = 0
    """When the team's timeout falls due (0: none); the agent's ``deadline`` still caps it."""
    rule_timeout: float = 0
    """The rule's ``timeout`` in seconds (0: none), as routed."""
    on_timeout: str = "deny"
    escalation: list[dict[str, Any]] = field(default_factory=list)
    """Steps ``{"after": seconds, "approvers": [...]}`` in order."""
    escalated: tuple[int, ...] = ()
    """Indexes of the steps that fired."""
    timeout_escalated: bool = False
    """``on_timeout: escalate`` fired; the next timeout denies."""
    budget: float | None = None
    revision: int = 0
    """Bumped by each edit (and each new answer proposed under N-of-M); an approval or answer of an
    older revision is refused as stale."""
    edited_by: str = ""
    """Who made the latest edit (Modify) or proposed the pending answers (N-of-M): the input that runs is theirs."""
    votes: tuple[Vote, ...] = ()

    @property
    def posted(self) -> bool:
        return bool(self.ts)

    @property
    def expires_at(self) -> float:
        """When the request will be denied if nobody decides (0: never).

        The team's timeout when it ends in a deny, capped by the agent's own deadline."""
        candidates = [self.deadline]
        if self.timeout_at and (self.on_timeout != "escalate" or self.timeout_escalated):
            candidates.append(self.timeout_at)
        return min((c for c in candidates if c), default=0)

    @property
    def proposed_input(self) -> dict[str, Any]:
        """What an approval approves now: the latest edit, or the input as asked."""
        return self.updated_input if self.updated_input is not None else self.tool_input

    @property
    def modified(self) -> bool:
        """Approved with an input other than the one the agent asked for."""
        return self.updated_input is not None and self.updated_input != self.tool_input
