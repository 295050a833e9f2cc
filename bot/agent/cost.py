"""The agent's own cost estimate of a tool call."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from ..approvals import bounds

CostEstimator = Callable[[str, dict[str, Any]], "float | None | Awaitable[float | None]"]
"""``(tool_name, tool_input) -> dollars | None``, plain or async."""


async def estimate_cost(
    estimator: CostEstimator | None, tool_name: str, tool_input: dict[str, Any]
) -> float | None:
    """Run the agent's cost estimator; a wrong answer raises (and the call is denied)."""
    if estimator is None:
        return None
    estimate = estimator(tool_name, tool_input)
    if inspect.isawaitable(estimate):
        estimate = await estimate
    if estimate is None:
        return None
    try:
        return bounds.dollars(estimate, "cost_estimator's result")
    except bounds.OutOfRange as exc:
        raise CostEstimateError(f"it returned {estimate!r}: {exc}") from None


class CostEstimateError(ValueError):
    """The agent's cost estimator returned something that is not a usable number of dollars."""
