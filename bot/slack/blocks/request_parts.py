"""The parts of a request message around its input: who decides, what it costs, what *Always allow* grants."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ... import text
from ...approvals import grants, questions
from ...approvals.model import ApprovalRequest, State
from .. import limits, mrkdwn
from .kit import context, mrkdwn_text


def always_allow_block(request: ApprovalRequest) -> dict[str, Any] | None:
    """Every rule and directory "Always allow" grants; None when it is not offered.

    The agent is granted ``grants.listed(request.suggestions)``, the very list
    shown here: when Slack's limits leave no room for all of it, the button is
    not offered at all rather than granting something unseen.
    """
    # One person's "always" would outvote an N-of-M rule for every later call.
    if request.required != 1:
        return None
    granted = grants.listed(request.suggestions)
    if not granted.rules:
        return None  # a directory alone would not spare the next call its question
    pending = request.state is State.PENDING
    lines = [text.message.ALWAYS_ALLOW_GRANTS if pending else text.message.ALWAYS_ALLOWED_GRANTS]
    lines += [
        text.message.GRANT_RULE.format(rule=mrkdwn.escape(str(r)), words=mrkdwn.escape(r.describe()))
        for r in granted.rules
    ]
    lines += [text.message.GRANT_DIRECTORY.format(directory=mrkdwn.escape(d)) for d in granted.directories]
    lines.append(text.message.ALWAYS_ALLOW_TEAM if pending else text.message.ALWAYS_ALLOWED_TEAM)
    shown = "\n".join(lines)
    # Slack counts the escaped text, and astral characters may count twice.
    if len(shown) + sum(ord(c) > 0xFFFF for c in shown) > limits.SECTION_TEXT:
        return None
    # verbatim: Slack would otherwise turn a path or URL in a rule into a link.
    return {"type": "section", "text": {"type": "mrkdwn", "text": shown, "verbatim": True}}


def cost_lines(request: ApprovalRequest, spent: float | None) -> list[dict[str, Any]]:
    """The call's estimated cost, and what its route approved today (``spent``) against its budget."""
    if request.cost is None:
        return []
    lines = [text.message.COST.format(cost=request.cost)]
    if spent is not None:
        rule = mrkdwn.inline(request.rule, 200)
        if request.budget is not None:
            lines.append(text.message.SPENT_OF_BUDGET.format(rule=rule, spent=spent, budget=request.budget))
            if request.state is State.PENDING and spent + request.cost > request.budget:
                lines.append(text.message.OVER_BUDGET.format(rule=rule))
        else:
            lines.append(text.message.SPENT_TODAY.format(rule=rule, spent=spent))
    return [context(*lines)]


def team_lines(request: ApprovalRequest) -> list[dict[str, Any]]:
    """Who may decide, how many have approved, who was escalated to."""
    lines = [
        targets_line(text.message.WHO_DECIDES, request.approvers)
        if request.approvers
        else text.message.ANYONE_DECIDES
    ]
    if request.required > 1:
        # A question's votes are people agreeing on one answer (DECIDE).
        asked = questions.parse(request.tool_name, request.tool_input) is not None
        if request.votes:
            template = text.message.AGREED_BY if asked else text.message.PROGRESS_BY
            progress = template.format(count=len(request.votes), required=request.required, who="{who}")
            lines.append(targets_line(progress, [v.user for v in request.votes]))
        else:
            lines.append(
                (text.message.AGREED if asked else text.message.PROGRESS).format(
                    count=0, required=request.required
                )
            )
    added = [
        t
        for i in request.escalated
        if i < len(request.escalation)
        for t in request.escalation[i]["approvers"]
    ]
    if added:
        lines.append(targets_line(text.message.ESCALATED_TO, list(dict.fromkeys(added))))
    # Every line names people from the policy or from Slack, already fitted to TARGETS_LINE.
    return [{"type": "context", "elements": [mrkdwn_text(line, TARGETS_LINE) for line in lines]}]


TARGETS_LINE = 1000
"""A line naming the policy's people (paging, who can decide, escalated to). They are the bot's
own trusted text, so the line is never shrunk with the room (a long question must not unpage
the on-call group); only a policy with more targets than this holds is cut, saying how many more."""


def targets_line(template: str, ids: Sequence[str], budget: int = TARGETS_LINE) -> str:
    """``template`` naming ``ids`` (its ``{who}``), as many whole mentions as ``budget`` holds, then "and N more"."""
    line = template.format(who=text.notation.targets(ids))
    if mrkdwn.size(line) <= budget:
        return line

    def naming(count: int) -> str:
        return template.format(
            who=text.notation.TARGETS_MORE.format(
                who=text.notation.targets(ids[:count]), count=len(ids) - count
            )
        )

    low, high = 0, len(ids) - 1  # the most mentions that fit, by bisection (a line only grows with more)
    while low < high:
        mid = (low + high + 1) // 2
        if mrkdwn.size(naming(mid)) <= budget:
            low = mid
        else:
            high = mid - 1
    return naming(low)
