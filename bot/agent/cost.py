"""The agent's own cost estimate of a tool call."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

CostEstimator = Callable[[str, dict[str, Any]], "float | None | Awaitable[float | None]"]
"""``(tool_name, tool_input) -> dollars | None``, plain or async."""


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
