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

    @classmethod
    def from_redis(cls, raw: dict[str, str], votes: dict[str, str] | None = None) -> ApprovalRequest:
        """Build from the request hash and the votes hash (decoded strings)."""
        updated = raw.get("updated_input") or ""
        counted = []
        for user, value in (votes or {}).items():
            at, _, name = value.partition(" ")
            counted.append(Vote(user=user, name=name, at=float(at)))
        return cls(
            id=raw["id"],
            state=State(raw["state"]),
            tool_name=raw["tool_name"],
            tool_input=json.loads(raw["tool_input"]),
            input_hash=raw["input_hash"],
            call_hash=raw.get("call_hash", ""),
            created_at=float(raw["created_at"]),
            tool_use_id=raw.get("tool_use_id", ""),
            agent=raw.get("agent", ""),
            requested_by=raw.get("requested_by", ""),
            channel=raw.get("channel", ""),
            title=raw.get("title", ""),
            deadline=float(raw.get("deadline") or 0),
            posted_channel=raw.get("posted_channel", ""),
            ts=raw.get("ts", ""),
            post_started=float(raw.get("post_started") or 0),
            decided_by=raw.get("decided_by", ""),
            edited_by=raw.get("edited_by", ""),
            decided_by_name=raw.get("decided_by_name", ""),
            decided_at=float(raw.get("decided_at") or 0),
            reason=raw.get("reason", ""),
            updated_input=json.loads(updated) if updated else None,
            suggestions=json.loads(raw.get("suggestions") or "[]"),
            always=raw.get("always") == "1",
            stop=raw.get("stop") == "1",
            cost=_number(raw.get("cost")),
            mode=Mode(raw.get("mode") or Mode.WAIT),
            resolved=json.loads(raw.get("resolved") or "{}"),
            routed=raw.get("routed") == "1",
            rule=raw.get("rule", ""),
            approvers=tuple(raw.get("approvers", "").split()),
            mention=tuple(raw.get("mention", "").split()),
            required=int(raw.get("required") or 1),
            allow_self=raw.get("allow_self") == "1",
            timeout_at=float(raw.get("timeout_at") or 0),
            rule_timeout=float(raw.get("timeout") or 0),
            on_timeout=raw.get("on_timeout") or "deny",
            escalation=json.loads(raw.get("escalation") or "[]"),
            escalated=tuple(sorted({int(i) for i in raw.get("escalated", "").split()})),
            timeout_escalated=raw.get("timeout_escalated") == "1",
            budget=_number(raw.get("budget")),
            revision=int(raw.get("revision") or 0),
            votes=tuple(sorted(counted, key=lambda v: v.at)),
        )


def _number(value: str | None) -> float | None:
    return float(value) if value else None


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
    event: str = ""
    """The audit event, when the state alone does not name it (``auto_allowed``)."""

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
    def audit_event(self) -> str:
        """The audit log's name for this transition."""
        if self.event:
            return self.event
        if self.state is State.APPROVED and self.always:
            return "always_allowed"
        if self.stop:
            return "denied_and_stopped"
        if self.state is State.APPROVED and self.updated_input is not None:
            return "modified"
        return self.state.value


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
