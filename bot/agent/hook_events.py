"""Claude Code's hook wire format, for the two events the gate answers.

``PreToolUse`` runs before every call its matcher names, whether or not
Claude Code would ask; ``PermissionRequest`` runs only when Claude Code would
show a permission prompt, and carries no ``tool_use_id`` (DESIGN.md §4).
Their answers differ in shape: a ``permissionDecision`` string for the first,
a ``decision`` object for the second. ``PostToolUse`` only tells the gate that
a call ran: in a terminal, the person there may have answered Claude Code's
own prompt before Slack did.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

PRE_TOOL_USE = "PreToolUse"
PERMISSION_REQUEST = "PermissionRequest"
POST_TOOL_USE = "PostToolUse"

BLOCK_IF_NOT_STARTED = " || exit 2"
"""Ends a PreToolUse hook's command: a hook that cannot start (exit 127: the interpreter moved, a
teammate's machine) gives no decision, and Claude Code would run what its own rules allow."""


class _Call(BaseModel):
    model_config = ConfigDict(extra="ignore")

    session_id: str = ""
    transcript_path: str = ""
    tool_name: str = Field(min_length=1)
    tool_input: dict[str, Any]
    agent_id: str = ""
    """Set when a subagent makes the call."""
    agent_type: str = ""
    """The subagent's kind (``general-purpose``, a custom agent's name)."""
    permission_mode: str = ""


class PreToolUseCall(_Call):
    """The part of a ``PreToolUse`` hook input the gate reads."""

    hook_event_name: Literal["PreToolUse"]
    tool_use_id: str = Field(min_length=1)


class PermissionRequestCall(_Call):
    """The part of a ``PermissionRequest`` hook input the gate reads."""

    hook_event_name: Literal["PermissionRequest"]
    prompt_id: str = ""
    permission_suggestions: list[Any] = Field(default_factory=list)
    """Claude Code's own "don't ask again" updates; only what Slack may grant is kept."""


class PostToolUseCall(_Call):
    """A call that ran: the gate checks whether the terminal answered one it was still asking Slack about."""

    hook_event_name: Literal["PostToolUse"]
    prompt_id: str = ""


HookCall = Annotated[
    PreToolUseCall | PermissionRequestCall | PostToolUseCall, Field(discriminator="hook_event_name")
]


Call = PreToolUseCall | PermissionRequestCall | PostToolUseCall
_CALL: TypeAdapter[Call] = TypeAdapter(HookCall)


def parse(raw: str | bytes) -> Call:
    """The hook input; ``pydantic.ValidationError`` when it is not one the gate answers."""
    return _CALL.validate_json(raw)


def event_of(raw: str | bytes) -> str:
    """The ``hook_event_name`` of an input that may be invalid otherwise ("" if none can be read):
    a failure is answered in that event's shape."""
    try:
        data = json.loads(raw)
    except ValueError:
        return ""
    name = data.get("hook_event_name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else ""


def pre_tool_use(
    decision: str, reason: str, updated_input: dict[str, Any] | None = None, *, stop: bool = False
) -> dict[str, Any]:
    """A ``PreToolUse`` answer: ``allow`` | ``deny`` | ``ask`` | ``defer`` with its reason.

    ``stop`` ends the agent's run too (``continue: false``): a PreToolUse deny
    has no ``interrupt`` of its own.
    """
    output: dict[str, Any] = {
        "hookEventName": PRE_TOOL_USE,
        "permissionDecision": decision,
        "permissionDecisionReason": reason,
    }
    if updated_input is not None:
        output["updatedInput"] = updated_input
    answer: dict[str, Any] = {"hookSpecificOutput": output}
    if stop:
        answer.update({"continue": False, "stopReason": reason})
    return answer


def permission_allow(
    updated_input: dict[str, Any], permissions: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A ``PermissionRequest`` allow: the whole input that runs, and the rules granted for the session."""
    decision: dict[str, Any] = {"behavior": "allow", "updatedInput": updated_input}
    if permissions:
        decision["updatedPermissions"] = permissions
    return {"hookSpecificOutput": {"hookEventName": PERMISSION_REQUEST, "decision": decision}}


def allows(answer: dict[str, Any]) -> bool:
    """Whether a ``PermissionRequest`` answer lets the call run."""
    decision = answer.get("hookSpecificOutput", {}).get("decision")
    return isinstance(decision, dict) and decision.get("behavior") == "allow"


def allowed_input(answer: dict[str, Any]) -> Any:
    """The input a ``PermissionRequest`` allow runs (None for any other answer)."""
    decision = answer.get("hookSpecificOutput", {}).get("decision")
    return decision.get("updatedInput") if isinstance(decision, dict) else None


def permission_deny(message: str, *, interrupt: bool = False) -> dict[str, Any]:
    """A ``PermissionRequest`` deny: ``message`` is the model's tool result; ``interrupt`` ends the run."""
    decision: dict[str, Any] = {"behavior": "deny", "message": message}
    if interrupt:
        decision["interrupt"] = True
    return {"hookSpecificOutput": {"hookEventName": PERMISSION_REQUEST, "decision": decision}}
