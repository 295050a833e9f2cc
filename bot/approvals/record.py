"""The request hash: its field names and how an ``ApprovalRequest`` is written to it and read back.

Everything else asks this module. The Lua scripts write the fields of later
transitions (routing, decisions, escalation) themselves, by these names:
``tests/test_lua_scripts`` checks every field a script names against ``Field``.
"""

from __future__ import annotations

import json
from enum import StrEnum

from .model import ApprovalRequest, Mode, NewRequest, State, Vote, input_hash, to_json


class Field(StrEnum):
    """A field of the request hash (``keys.request``)."""

    # Written when the request is created (``new_fields``).
    ID = "id"
    STATE = "state"
    TOOL_NAME = "tool_name"
    TOOL_INPUT = "tool_input"
    INPUT_HASH = "input_hash"
    CALL_HASH = "call_hash"
    CREATED_AT = "created_at"
    TOOL_USE_ID = "tool_use_id"
    AGENT = "agent"
    REQUESTED_BY = "requested_by"
    CHANNEL = "channel"
    TEAM = "team"
    TITLE = "title"
    DEADLINE = "deadline"
    SUGGESTIONS = "suggestions"
    COST = "cost"
    REVISION = "revision"
    MODE = "mode"
    RESOLVED = "resolved"
    LATEST = "latest"
    """The request of a newer call that reused this one's ``tool_use_id`` (CREATE)."""
    # What the policy decided (ROUTE).
    ROUTED = "routed"
    RULE = "rule"
    APPROVERS = "approvers"
    MENTION = "mention"
    REQUIRED = "required"
    ALLOW_SELF = "allow_self"
    TIMEOUT = "timeout"
    ON_TIMEOUT = "on_timeout"
    ESCALATION = "escalation"
    BUDGET = "budget"
    SPEND_KEY = "spend_key"
    TIMEOUT_AT = "timeout_at"
    # Its Slack message (START_POST, MARK_POSTED, ``RequestStore.set_shown``).
    POST_STARTED = "post_started"
    POSTED_CHANNEL = "posted_channel"
    TS = "ts"
    SHOWN = "shown"
    ANNOUNCED = "announced"
    """Its outcome was (or is being) posted in its thread (``RequestStore.claim_announcement``)."""
    # Escalation (ESCALATE, TIMEOUT).
    ESCALATED = "escalated"
    TIMEOUT_ESCALATED = "timeout_escalated"
    # The decision (DECIDE).
    DECIDED_BY = "decided_by"
    DECIDED_BY_NAME = "decided_by_name"
    DECIDED_AT = "decided_at"
    REASON = "reason"
    UPDATED_INPUT = "updated_input"
    EDITED_BY = "edited_by"
    ALWAYS = "always"
    STOP = "stop"
    SPEND_TOKEN = "spend_token"
    """The spend reservation the approval used (``approvals.spend``), and its counter."""
    SPEND_COUNTER = "spend_counter"


FLAG = "1"
"""A true flag; a false one is ``""`` or no field at all."""


def flag(value: bool) -> str:
    return FLAG if value else ""


def optional_number(value: float | None) -> str:
    """A number that may be absent (a cost, a budget): ``""`` for None."""
    return repr(value) if value is not None else ""


def new_fields(new: NewRequest, *, call: str, now: float, deadline: float) -> dict[str, str]:
    """The hash of a request just asked for (CREATE writes it as it is)."""
    fields = {
        Field.ID: new.id,
        Field.STATE: State.PENDING.value,
        Field.TOOL_NAME: new.tool_name,
        Field.TOOL_INPUT: to_json(new.tool_input),
        Field.INPUT_HASH: input_hash(new.tool_input),
        Field.CALL_HASH: call,
        Field.CREATED_AT: repr(now),
        Field.TOOL_USE_ID: new.tool_use_id or "",
        Field.AGENT: new.agent,
        Field.REQUESTED_BY: new.requested_by,
        Field.CHANNEL: new.channel,
        Field.TEAM: new.team,
        Field.TITLE: new.title,
        Field.DEADLINE: repr(deadline),
        Field.SUGGESTIONS: to_json(new.suggestions),
        Field.COST: optional_number(new.cost),
        Field.REVISION: "0",
        Field.MODE: new.mode.value,
        Field.RESOLVED: to_json(new.resolved),
    }
    return {name.value: value for name, value in fields.items()}


def decode(raw: dict[str, str], votes: dict[str, str] | None = None) -> ApprovalRequest:
    """The request in a request hash and its votes hash (decoded strings)."""
    updated = raw.get(Field.UPDATED_INPUT) or ""
    counted = []
    for user, value in (votes or {}).items():
        at, _, name = value.partition(" ")
        counted.append(Vote(user=user, name=name, at=float(at)))
    return ApprovalRequest(
        id=raw[Field.ID],
        state=State(raw[Field.STATE]),
        tool_name=raw[Field.TOOL_NAME],
        tool_input=json.loads(raw[Field.TOOL_INPUT]),
        input_hash=raw[Field.INPUT_HASH],
        call_hash=raw.get(Field.CALL_HASH, ""),
        created_at=float(raw[Field.CREATED_AT]),
        tool_use_id=raw.get(Field.TOOL_USE_ID, ""),
        agent=raw.get(Field.AGENT, ""),
        requested_by=raw.get(Field.REQUESTED_BY, ""),
        channel=raw.get(Field.CHANNEL, ""),
        team=raw.get(Field.TEAM, ""),
        title=raw.get(Field.TITLE, ""),
        deadline=float(raw.get(Field.DEADLINE) or 0),
        posted_channel=raw.get(Field.POSTED_CHANNEL, ""),
        ts=raw.get(Field.TS, ""),
        post_started=float(raw.get(Field.POST_STARTED) or 0),
        decided_by=raw.get(Field.DECIDED_BY, ""),
        edited_by=raw.get(Field.EDITED_BY, ""),
        decided_by_name=raw.get(Field.DECIDED_BY_NAME, ""),
        decided_at=float(raw.get(Field.DECIDED_AT) or 0),
        reason=raw.get(Field.REASON, ""),
        updated_input=json.loads(updated) if updated else None,
        suggestions=json.loads(raw.get(Field.SUGGESTIONS) or "[]"),
        always=raw.get(Field.ALWAYS) == FLAG,
        stop=raw.get(Field.STOP) == FLAG,
        cost=_number(raw.get(Field.COST)),
        mode=Mode(raw.get(Field.MODE) or Mode.WAIT),
        resolved=json.loads(raw.get(Field.RESOLVED) or "{}"),
        routed=raw.get(Field.ROUTED) == FLAG,
        rule=raw.get(Field.RULE, ""),
        approvers=tuple(raw.get(Field.APPROVERS, "").split()),
        mention=tuple(raw.get(Field.MENTION, "").split()),
        required=int(raw.get(Field.REQUIRED) or 1),
        allow_self=raw.get(Field.ALLOW_SELF) == FLAG,
        timeout_at=float(raw.get(Field.TIMEOUT_AT) or 0),
        rule_timeout=float(raw.get(Field.TIMEOUT) or 0),
        on_timeout=raw.get(Field.ON_TIMEOUT) or "deny",
        escalation=json.loads(raw.get(Field.ESCALATION) or "[]"),
        escalated=tuple(sorted({int(i) for i in raw.get(Field.ESCALATED, "").split()})),
        timeout_escalated=raw.get(Field.TIMEOUT_ESCALATED) == FLAG,
        budget=_number(raw.get(Field.BUDGET)),
        revision=int(raw.get(Field.REVISION) or 0),
        votes=tuple(sorted(counted, key=lambda v: v.at)),
    )


def _number(value: str | None) -> float | None:
    return float(value) if value else None
