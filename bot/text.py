"""Every sentence a person or the model reads, in one place.

Messages to the model say what happened and that the tool did not run, so it
can tell the user instead of retrying blindly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from .approvals.model import POLICY_ACTOR, ApprovalRequest, Refusal, Reply, State, Transition
from .approvals.policy import is_group
from .approvals.questions import TOOL_NAME as QUESTION_TOOL


def duration(seconds: float) -> str:
    """``86400`` → ``"1 day"``, ``90`` → ``"1 minute 30 seconds"``."""
    remaining = round(seconds)
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count} {unit}{'' if count == 1 else 's'}")
    return " ".join(parts[:2]) or "0 seconds"


# -- to the model (PermissionResultDeny.message) ------------------------------

DISCUSSION_REPLY = 1000
DISCUSSION_TOTAL = 8000
"""Characters of one thread reply, and of the whole discussion, the model is given."""


def deny_message(request: ApprovalRequest, discussion: Sequence[Reply] = ()) -> str:
    """What the model is told when a request ended without approval, and what people said in its thread."""
    return _deny_reason(request) + discussion_text(discussion)


def discussion_text(replies: Sequence[Reply]) -> str:
    """``\nDiscussion in Slack: @alice: … / @bob: …`` (empty without replies)."""
    if not replies:
        return ""
    lines = []
    for reply in replies:
        said = " ".join(reply.text.split())
        if len(said) > DISCUSSION_REPLY:
            said = said[: DISCUSSION_REPLY - 1] + "…"
        lines.append(f"@{reply.name or reply.user}: {said}")
    joined = " / ".join(lines)
    if len(joined) > DISCUSSION_TOTAL:
        joined = joined[: DISCUSSION_TOTAL - 1] + "…"
    return f"\nDiscussion in Slack: {joined}"


def _deny_reason(request: ApprovalRequest) -> str:
    match request.state:
        case State.DENIED if request.decided_by == POLICY_ACTOR:
            message = f"Denied by the team's approval policy (rule {request.rule}). The tool was not run."
            if request.reason:
                message += f" {request.reason}"
            return message
        case State.DENIED if request.tool_name == QUESTION_TOOL:
            message = f"{_who(request)} ({request.decided_by}) declined to answer in Slack."
            if request.reason:
                message += f" Reason: {request.reason}"
            return message
        case State.DENIED:
            message = f"Denied in Slack by {_who(request)} ({request.decided_by}). The tool was not run."
            if request.reason:
                message += f" Reason: {request.reason}"
            return message
        case State.EXPIRED:
            waited = duration(request.deadline - request.created_at) if request.deadline else "the time allowed"
            return (
                f"Denied: nobody approved this {request.tool_name} call in Slack within {waited}, "
                "so the request expired. The tool was not run."
            )
        case State.UNDELIVERABLE:
            return (
                "Denied: the approval request could not be posted to Slack "
                f"({request.reason or 'unknown error'}), so nobody could approve it. The tool was not run."
            )
        case State.CANCELLED:
            # A cancel is final (Slack already shows it), also for a session
            # resumed later: the model has to ask again, as a new request.
            return (
                "Denied: the approval request was cancelled because the agent stopped waiting. "
                "The tool was not run; call it again to ask anew."
            )
        case _:
            raise ValueError(f"no deny message for state {request.state}")


def allow_reason(request: ApprovalRequest) -> str:
    """Why a gate hook allows a call (Claude Code shows it to the user)."""
    if request.decided_by == POLICY_ACTOR:
        return f"Allowed by the team's approval policy (rule {request.rule})."
    verb = "Answered" if request.state is State.ANSWERED else "Approved"
    edited = " with changes" if request.modified else ""
    return f"{verb} in Slack by {_who(request)}{edited}."


DEFER_REASON = "Waiting for approval in Slack; the run resumes once the team decides."
ASK_REASON = "Waiting for approval in Slack."


def still_waiting(request: ApprovalRequest) -> str:
    """What an interactive Claude Code session is told when the gate stops waiting."""
    channel = request.posted_channel or request.channel
    where = f"Slack channel {channel}" if channel else "Slack"
    return (
        f"Not run yet: still waiting for approval in {where} (request {request.id}). "
        "The request stays open; try the same call again later to pick up the decision."
    )


def _who(request: ApprovalRequest) -> str:
    return f"@{request.decided_by_name}" if request.decided_by_name else request.decided_by


def deny_unreachable(error: BaseException) -> str:
    return (
        f"Denied: the approval service could not be reached ({type(error).__name__}: {error}), "
        "so nobody could approve this call. The tool was not run."
    )


def deny_internal_error(error: BaseException) -> str:
    return (
        f"Denied: the approval service failed ({type(error).__name__}: {error}). "
        "The tool was not run."
    )


DENY_SHUTDOWN = (
    "Denied: the approval client was shut down before anyone decided. The tool was not run."
)

DENY_VANISHED = (
    "Denied: the approval request disappeared from storage before anyone decided it. "
    "The tool was not run."
)


# -- in Slack ----------------------------------------------------------------

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
ALWAYS_ALLOW_EXPLAINED = (
    "*Always allow* approves this call and also allows {rules} for the rest of this agent's session "
    "and for the whole team from now on (see `/approvals rules`)."
)
MODIFY = "Modify"
DENY = "Deny"
VIEW_FULL_INPUT = "View full input"

TRUNCATED = "… [{hidden:,} more characters; use “View full input”]"
TRUNCATED_IN_MODAL = "… [{hidden:,} more characters not shown]"

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
            return f":pencil2: Approved with changes by {_approvers(request)} {when}"
        case State.APPROVED:
            return f":white_check_mark: Approved by {_approvers(request)} {when}"
        case State.ANSWERED:
            return f":speech_balloon: Answered by <@{request.decided_by}> {when}"
        case State.DENIED:
            return f":no_entry: Denied by <@{request.decided_by}> {when}"
        case State.EXPIRED:
            return f":hourglass: Expired {when}: nobody decided in time. The agent was told no."
        case State.CANCELLED:
            return f":no_entry_sign: Cancelled {when}: the agent stopped waiting. Nothing ran."
        case State.UNDELIVERABLE:
            return f":warning: Not delivered {when}. The agent was told no."
        case _:
            return ""


def _approvers(request: ApprovalRequest) -> str:
    """Everyone whose approval counted (N-of-M), else the one who decided."""
    users = [v.user for v in request.votes] or [request.decided_by]
    return ", ".join(f"<@{u}>" for u in users)


REASON_PLAIN = "Reason: {reason}"


def already_ended(request: ApprovalRequest | None) -> str:
    """Ephemeral for a click that came too late."""
    if request is None:
        return "This approval request no longer exists."
    match request.state:
        case State.APPROVED:
            return f"This request was already approved by <@{request.decided_by}>."
        case State.DENIED:
            return f"This request was already denied by <@{request.decided_by}>."
        case State.ANSWERED:
            return f"This question was already answered by <@{request.decided_by}>."
        case State.EXPIRED:
            return "This request expired before anyone decided; the agent was told no."
        case State.CANCELLED:
            return "This request was cancelled: the agent stopped waiting."
        case _:
            return "This request can no longer be decided."


DENY_MODAL_TITLE = "Deny request"
DENY_MODAL_SUBMIT = "Deny"
DENY_MODAL_CLOSE = "Cancel"
DENY_REASON_LABEL = "Reason"
"""Slack adds "(optional)" itself to an optional input."""
DENY_REASON_HINT = "The agent receives this verbatim."
DENY_MODAL_INTRO = "The agent will be told that you denied this request, and why."

MODIFY_MODAL_TITLE = "Modify and approve"
MODIFY_MODAL_SUBMIT = "Approve"
MODIFY_MODAL_INTRO = "Edit *{tool}* and approve it. The agent runs exactly what you submit."
FIELD_TOO_LARGE = (
    "*{label}* is too large to edit here ({size:,} characters; a Slack text input holds {limit:,}). "
    "It stays as it is."
)
NOTHING_EDITABLE = "This input is too large to edit in Slack. Approve or deny it as it is."
CHANGES_HEADING = "*Changed before approval*"
BEFORE = "Before"
AFTER = "After"

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
ANSWER_MODAL_TITLE = "Answer the agent"
ANSWER_MODAL_SUBMIT = "Send answers"
CHOOSE = "Choose…"
OWN_ANSWER_LABEL = "Or type your own answer"
ANSWER_LINE = "*Answer:* {answer}"
NOT_A_QUESTION = "This request is not a question the form can show. Approve or deny it instead."

RULES_HEADING = "Team allow-list"
RULES_INTRO = "Calls matching these rules are approved without asking. Each was added with *Always allow*."
NO_RULES = "The team allow-list is empty. *Always allow* on a request adds its rule here."
RULE_LINE = "`{rule}`: {words}. Added by <@{user}> <!date^{epoch}^{{date_short_pretty}}|{fallback}>"
REMOVE = "Remove"
RULE_REMOVED = "Removed `{rule}` from the team allow-list."
RULE_ALREADY_GONE = "That rule was already removed."
COMMAND_HELP = (
    "`/approvals` lists the requests waiting for your decision. "
    "`/approvals rules` lists the team allow-list (calls approved without asking), with a button to remove each rule."
)

# -- team rules (policy) ------------------------------------------------------

def target(slack_id: str) -> str:
    """A user or a user group as a mention (``<!subteam^…>`` is the only form that notifies a group)."""
    return f"<!subteam^{slack_id}>" if is_group(slack_id) else f"<@{slack_id}>"


def targets(ids: Sequence[str]) -> str:
    return ", ".join(target(i) for i in ids)


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
        f"this {request.tool_name} request (see the message above)."
    )


def refused(transition: Transition) -> str:
    """Why a person's click or form changed nothing (an ephemeral or a modal notice)."""
    request = transition.request
    match transition.refused:
        case Refusal.SELF:
            return "You cannot approve a request your own agent made; another approver has to."
        case Refusal.STALE:
            return (
                "This request was changed after you looked at it. "
                "Read the new version in the message and approve that one."
            )
        case Refusal.VOTED:
            needed = request.required if request else 2
            return f"You already approved this request. It needs approvals from {needed} different people."
        case Refusal.UNKNOWN_GROUPS:
            return "Your approver group membership could not be checked just now. Try again in a minute."
        case _:
            who = targets(request.approvers) if request and request.approvers else "the approvers"
            return f"You are not an approver for this request. It can be decided by {who}."


DISCUSSION_AUDIT_LIMIT = 20_000
"""Characters of a thread's discussion kept in its audit entry."""


# -- /approvals and App Home -------------------------------------------------

PENDING_HEADING = "Waiting for you"
NOTHING_PENDING = "Nothing is waiting for your decision."
PENDING_LINE = "*{tool}* {summary}\n{agent}<{link}|Open the request> · asked <!date^{epoch}^{{date_short_pretty}} at {{time}}|{fallback}>"
PENDING_NOT_POSTED = "*{tool}* {summary}\n{agent}not posted yet · asked <!date^{epoch}^{{date_short_pretty}} at {{time}}|{fallback}>"
PENDING_MORE = "…and {count} more."
RECENT_HEADING = "Your recent decisions"
NO_RECENT = "You have not decided anything yet."
RECENT_LINE = "{event} request `{request}` <!date^{epoch}^{{date_short_pretty}} at {{time}}|{fallback}>"
RECENT_EVENTS = {
    "approved": ":white_check_mark: Approved",
    "always_allowed": ":white_check_mark: Always allowed",
    "modified": ":pencil2: Approved with changes",
    "vote": ":ballot_box_with_check: Voted to approve",
    "modified_vote": ":pencil2: Edited and voted to approve",
    "answered": ":speech_balloon: Answered",
    "denied": ":no_entry: Denied",
}
HOME_INTRO = "Agent tool calls waiting for approval that you can decide, and what you decided lately."

FULL_INPUT_TITLE = "Full input"
CLOSE = "Close"
LOADING = "Loading…"



def utc(epoch: float) -> str:
    """A time for clients that cannot render ``<!date>``."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
