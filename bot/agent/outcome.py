"""What a tool call is told once its request ended: one answer for ``can_use_tool`` and the gate hook."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .. import text
from ..approvals.model import ApprovalRequest, State
from ..approvals.store import RequestStore

CostEstimator = Callable[[str, dict[str, Any]], "float | None | Awaitable[float | None]"]
"""``(tool_name, tool_input) -> dollars | None``, plain or async."""


@dataclass(frozen=True)
class Outcome:
    allowed: bool
    message: str
    """The deny message for the model, or why the call is allowed."""
    updated_input: dict[str, Any] | None = None
    """For an allow: exactly what the approvers saw (or their edit)."""
    grants: list[dict[str, Any]] = field(default_factory=list)
    """Permission updates approved with "Always allow"."""


async def outcome_of(store: RequestStore, request: ApprovalRequest | None) -> Outcome:
    """The answer for a request that ended; None means it vanished from Redis."""
    if request is None:
        return Outcome(False, text.DENY_VANISHED)
    if request.state in (State.APPROVED, State.ANSWERED):
        # Allow what the approvers saw (or the edit they made), not whatever
        # input a repeated call with the same tool_use_id carries.
        grants = request.suggestions if request.always else []
        return Outcome(True, text.allow_reason(request), request.proposed_input, grants)
    discussion = await store.discussion(request.id) if request.posted else []
    return Outcome(False, text.deny_message(request, discussion))


async def estimate_cost(estimator: CostEstimator | None, tool_name: str, tool_input: dict[str, Any]) -> float | None:
    """Run the agent's cost estimator; a wrong answer raises (and the call is denied)."""
    if estimator is None:
        return None
    estimate = estimator(tool_name, tool_input)
    if inspect.isawaitable(estimate):
        estimate = await estimate
    if estimate is None:
        return None
    if isinstance(estimate, bool) or not isinstance(estimate, (int, float)) or estimate < 0:
        raise ValueError(f"cost_estimator returned {estimate!r}; expected dollars (a number >= 0) or None")
    return float(estimate)
