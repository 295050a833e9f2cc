"""How much each variable part of a request message may show, tried from roomy to tight."""

from __future__ import annotations

from dataclasses import dataclass

from .. import limits


@dataclass(frozen=True)
class Room:
    """How much each variable part of a request message may show (as ``mrkdwn.size`` counts)."""

    preview: int
    """One input field."""
    diff: int
    """One side of a changed field."""
    question: int
    """One question's text, and one answer."""
    option: int
    """One option's description."""
    line: int
    """A title, a line of names, the paging line."""
    reason: int
    """A deny reason."""


ROOMS = (
    Room(
        preview=limits.PREVIEW_TEXT,
        diff=900,
        question=1500,
        option=300,
        line=1000,
        reason=limits.SECTION_TEXT - 20,
    ),
    Room(preview=1200, diff=600, question=800, option=200, line=600, reason=1500),
    Room(preview=700, diff=350, question=400, option=120, line=400, reason=800),
    Room(preview=400, diff=200, question=250, option=75, line=250, reason=400),
    Room(preview=200, diff=100, question=120, option=40, line=150, reason=200),
    Room(preview=100, diff=60, question=60, option=20, line=100, reason=100),
)
"""Tried in order until the whole message fits ``limits.MESSAGE_TEXT_BUDGET``; the
last one fits any request (tests/test_message_budget.py tries the worst)."""
