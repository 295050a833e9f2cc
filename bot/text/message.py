"""The request message in the channel: header, lines, buttons, the outcome line, and the reminder
in its thread.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..approvals.model import TERMINAL_ACTOR, ApprovalRequest, State
from ..slack.mrkdwn import inline
from .agent import TERMINAL_LEFT
from .notation import duration, targets, utc

HEADER = {
    State.PENDING: "Approval needed: {tool}",
    State.APPROVED: "Approved: {tool}",
    State.ANSWERED: "Answered: {tool}",
    State.DENIED: "Denied: {tool}",
    State.EXPIRED: "Expired: {tool}",
    State.CANCELLED: "Cancelled: {tool}",
    State.UNDELIVERABLE: "Not delivered: {tool}",
}

NOTIFICATION = "Approval needed: {tool} {summary}"
"""Top-level ``text``: what a push notification shows."""

APPROVE = "Approve"
ALWAYS_ALLOW = "Always allow"
ALWAYS_ALLOW_GRANTS = "*Always allow* approves this call and grants this agent, for the rest of its session:"
ALWAYS_ALLOWED_GRANTS = "*Always allow* granted this agent, for the rest of its session:"
GRANT_RULE = "• the rule `{rule}`: {words}"
GRANT_DIRECTORY = (
    "• the directory `{directory}` and everything under it, as part of its workspace "
    "(reading files there needs no approval)"
)
ALWAYS_ALLOW_TEAM = (
    "The rules also join the team allow-list, for every agent from now on (see `/approvals rules`)."
)
ALWAYS_ALLOWED_TEAM = "The rules also joined the team allow-list (see `/approvals rules`)."
MODIFY = "Modify"
DENY = "Deny"
DENY_STOP = "Deny and stop"
VIEW_FULL_INPUT = "View full input"

TRUNCATED = "… [{hidden:,} more characters; use “View full input”]"

AGENT_LINE = "*Agent:* {agent}"
REQUESTED_BY_LINE = "*On behalf of:* <@{user}>"
EXPIRES_LINE = "Expires <!date^{epoch}^{{date_short_pretty}} at {{time}}|{fallback}>"
NEVER_EXPIRES = "Waits until decided"
REQUEST_ID_LINE = "Request `{id}`"


def outcome_line(request: ApprovalRequest) -> str:
    """The context line that replaces the buttons once a request ended.

    ``<!date^…>`` shows the time in each reader's own time zone.
    """
    when = f"<!date^{int(request.decided_at)}^{{date_short_pretty}} at {{time}}|{utc(request.decided_at)}>"
    match request.state:
        case State.APPROVED if request.always:
            return f":white_check_mark: Approved and always allowed by {_approvers(request)} {when}"
        case State.APPROVED if request.modified:
            return f":pencil2: Changed by <@{_editor(request)}>, approved by {_approvers(request)} {when}"
        case State.APPROVED:
            return f":white_check_mark: Approved by {_approvers(request)} {when}"
        case State.ANSWERED:
            return f":speech_balloon: Answered by {_approvers(request)} {when}"
        case State.DENIED if request.stop:
            return f":octagonal_sign: Denied by <@{request.decided_by}>, and the agent's run stopped {when}"
        case State.DENIED:
            return f":no_entry: Denied by <@{request.decided_by}> {when}"
        case State.EXPIRED:
            return f":hourglass: Expired {when}: nobody decided in time. The agent was told no."
        case State.CANCELLED if request.decided_by == TERMINAL_ACTOR and request.reason == TERMINAL_LEFT:
            return f":computer: Left to the terminal {when}: nobody decided here in time, so Claude Code's own prompt decides."
        case State.CANCELLED if request.decided_by == TERMINAL_ACTOR:
            return f":computer: Answered in the terminal {when}. Nothing is decided here."
        case State.CANCELLED:
            return f":no_entry_sign: Cancelled {when}: the agent stopped waiting. Nothing ran."
        case State.UNDELIVERABLE:
            return f":warning: Not delivered {when}. The agent was told no."
        case _:
            return ""


def _approvers(request: ApprovalRequest) -> str:
    """Everyone whose approval counted (N-of-M), else the one who decided: "<@A>, <@B> and <@C>"."""
    users = [f"<@{v.user}>" for v in request.votes] or [f"<@{request.decided_by}>"]
    return users[0] if len(users) == 1 else ", ".join(users[:-1]) + " and " + users[-1]


def _editor(request: ApprovalRequest) -> str:
    """Who made the change that ran (recorded by DECIDE with the edit)."""
    return request.edited_by or request.decided_by


REASON_PLAIN = "Reason: {reason}"


CHANGES_HEADING = "*Changed before approval* (above: the input as changed)"
CHANGED_FIELD = "*{key}*, before:\n```{before}```\nafter:\n```{after}```"
ALSO_CHANGED = "Also changed: {keys}"

QUESTION_HEADER = {
    State.PENDING: "Question from {agent}",
    State.ANSWERED: "Answered: question from {agent}",
    State.DENIED: "Declined: question from {agent}",
    State.EXPIRED: "Expired: question from {agent}",
    State.CANCELLED: "Cancelled: question from {agent}",
    State.UNDELIVERABLE: "Not delivered: question from {agent}",
    State.APPROVED: "Approved: question from {agent}",
}
THE_AGENT = "the agent"
ANSWER = "Answer…"
DECLINE = "Decline"


CHOOSE = "Choose…"


OTHER_OPTION = "Other…"
"""The last option of every question, in the form and in the menu on the message (which opens the form)."""


ANSWER_LINE = "*Answer:* {answer}"
PROPOSED_ANSWER_LINE = "*Proposed answer:* {answer}"
PROPOSED_BY = "Proposed by <@{user}>. {how}"
"""Under answers awaiting agreement (N-of-M): ``how`` is ``AGREE_BY_MENU`` or ``AGREE_BY_FORM``."""
AGREE_BY_MENU = "Pick the same to agree; another answer replaces it and the count starts again."
AGREE_BY_FORM = "Send the same answers to agree; other answers replace them and the count starts again."
AGREED = "*Agreed:* {count} of {required}"
AGREED_BY = "*Agreed:* {count} of {required}: {who}"


RULE_LINE_POLICY = "*Rule:* {rule}"
WHO_DECIDES = "*Who can decide:* {who}"
ANYONE_DECIDES = "Anyone in this channel can decide."
PAGING = ":rotating_light: {who}: approval needed"
PROGRESS = "*Approvals:* {count} of {required}"
PROGRESS_BY = "*Approvals:* {count} of {required}: {who}"
COST = ":moneybag: *Estimated cost:* ${cost:,.2f}"
SPENT_TODAY = "Approved today on `{rule}`: ${spent:,.2f}"
SPENT_OF_BUDGET = "Approved today on `{rule}`: ${spent:,.2f} of ${budget:,.2f} daily budget"
OVER_BUDGET = ":warning: Approving this takes `{rule}` over its daily budget."
ESCALATED_TO = ":arrow_double_up: Escalated to {who}"
ESCALATES_LINE = "Escalates <!date^{epoch}^{{date_short_pretty}} at {{time}}|{fallback}> if nobody decides"


def reminder(request: ApprovalRequest, added: Sequence[str], waited: float) -> str:
    """Posted in the request's thread when an escalation step fires."""
    who = targets(added) if added else "Approvers"
    return (
        f":rotating_light: No decision after {duration(waited)}. {who}: you can now approve or deny "
        f"this {inline(request.tool_name, 200)} request (see the message above)."
    )
