"""How times, durations and people are written wherever they appear, and whether a request is a question
(its wording differs).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from ..approvals.model import ApprovalRequest, is_group
from ..approvals.questions import parse as parse_questions


def duration(seconds: float) -> str:
    """``86400`` → ``"1 day"``, ``90`` → ``"1 minute 30 seconds"``."""
    remaining = round(seconds)
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count} {unit}{'' if count == 1 else 's'}")
    return " ".join(parts[:2]) or "0 seconds"


def target(slack_id: str) -> str:
    """A user or a user group as a mention (``<!subteam^…>`` is the only form that notifies a group)."""
    return f"<!subteam^{slack_id}>" if is_group(slack_id) else f"<@{slack_id}>"


def targets(ids: Sequence[str]) -> str:
    return ", ".join(target(i) for i in ids)


TARGETS_MORE = "{who} and {count} more"
"""The policy names more people than a line holds: the first ones, then how many are not shown."""


def is_question(request: ApprovalRequest | None) -> bool:
    return request is not None and parse_questions(request.tool_name, request.tool_input) is not None


def utc(epoch: float) -> str:
    """A time for clients that cannot render ``<!date>``."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
