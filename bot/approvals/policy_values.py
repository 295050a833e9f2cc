"""The values a policy file holds besides its rules' patterns: durations, dollars, Slack ids.

Each is a pydantic type that validates where the file is read, so a rule
never carries an unusable number (``bounds``) or a malformed id.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

from . import bounds


def parse_duration(value: Any) -> float:
    """``90``, ``"90s"``, ``"15m"``, ``"2h"``, ``"1d"``, ``"1h30m"`` → seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 15m, 2h or 1d")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif (
        isinstance(value, str)
        and (parts := re.fullmatch(r"\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*", value))
        and value.strip()
    ):
        days, hours, minutes, secs = (int(p or 0) for p in parts.groups())
        seconds = float(days * 86400 + hours * 3600 + minutes * 60 + secs)
    else:
        raise ValueError("expected a duration such as 30s, 15m, 2h or 1d")
    return bounds.seconds(seconds, "a duration")


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written as a number or as ``30s`` / ``15m`` / ``2h`` / ``1d``; finite, at most a year."""

Dollars = Annotated[float, Field(ge=0, le=bounds.MAX_DOLLARS, allow_inf_nan=False)]
"""A cost or budget: finite, not negative, at most ``bounds.MAX_DOLLARS``."""


def _slack_id(pattern: str, what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(f"expected {what}, got {value!r}")
        return value

    return AfterValidator(check)


SlackTarget = Annotated[str, _slack_id(r"[UWS][A-Z0-9]{2,}", "a Slack user id (U…) or user group id (S…)")]
"""A user (``U…``/``W…``) or a user group (``S…``)."""

ChannelId = Annotated[str, _slack_id(r"[CGD][A-Z0-9]{2,}", "a Slack channel id (C…)")]

TeamId = Annotated[str, _slack_id(r"[TE][A-Z0-9]{2,}", "a Slack workspace id (T…) or organisation id (E…)")]
"""A workspace (``T…``) or an Enterprise Grid organisation (``E…``)."""
