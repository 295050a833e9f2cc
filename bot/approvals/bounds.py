"""The ranges every number that enters a request must fall in.

Numbers reach the Lua transitions from the policy file, the agent's cost
estimator, the agent's settings and the tool input itself (``cost_field``).
Redis scripts are not rolled back when they fail half way, and Lua and JSON
disagree with Python about ``inf`` and ``nan`` (``INCRBYFLOAT`` refuses an
infinite increment, cjson cannot decode ``Infinity``), so a value out of
range is refused where it enters, and the scripts check again before their
first write.
"""

from __future__ import annotations

import math

MAX_DOLLARS = 1_000_000_000.0
"""The largest cost or budget, in dollars: a billion is no call's real price."""

MAX_SECONDS = 366 * 86400.0
"""The longest timeout or escalation delay: a year (0 still means "never" where allowed)."""


class OutOfRange(ValueError):
    """A number that cannot be used: not finite, negative or too large."""


def dollars(value: float, what: str) -> float:
    """``value`` as dollars, or ``OutOfRange`` naming ``what``."""
    return _checked(value, what, MAX_DOLLARS, "dollars")


def seconds(value: float, what: str) -> float:
    """``value`` as a duration, or ``OutOfRange`` naming ``what``."""
    return _checked(value, what, MAX_SECONDS, "seconds")


def _checked(value: float, what: str, ceiling: float, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OutOfRange(f"{what} must be a number, not {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise OutOfRange(f"{what} must be a finite number of {unit}, not {value!r}")
    if number < 0:
        raise OutOfRange(f"{what} cannot be negative ({value!r})")
    if number > ceiling:
        raise OutOfRange(f"{what} must be at most {ceiling:g} {unit} ({value!r})")
    return number
