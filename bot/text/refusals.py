"""Why a click, form or command changed nothing (an ephemeral or a modal notice)."""

from __future__ import annotations

from collections.abc import Sequence

from ..approvals.model import TERMINAL_ACTOR, ApprovalRequest, Refusal, State, Transition
from .notation import is_question, targets


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
        case State.CANCELLED if request.decided_by == TERMINAL_ACTOR:
            return "This request was answered in the terminal, so nothing is decided here."
        case State.CANCELLED:
            return "This request was cancelled: the agent stopped waiting."
        case _:
            return "This request can no longer be decided."


ENDED_TITLE = "Request ended"
"""The title of a notice that a request can no longer be decided (modal titles ≤ 24)."""


NOT_AN_OPTION = (
    "That choice is not one of this question's options, so nothing was recorded. "
    "Pick an option in the menu, or *Other…* to type an answer."
)


def rule_removal_refused(route: str, managers: Sequence[str]) -> str:
    who = targets(managers) if managers else "the policy's admins"
    where = f" (granted on route {route})" if route else ""
    return f"You cannot remove this rule{where}. It can be removed by {who}, or by whoever added it."


def refused(transition: Transition) -> str:
    """Why a person's click or form changed nothing (an ephemeral or a modal notice)."""
    request = transition.request
    match transition.refused:
        case Refusal.SELF:
            return "You cannot approve a request your own agent made; another approver has to."
        case Refusal.STALE if is_question(request):
            return (
                "Someone proposed other answers after you looked at this question. "
                "Read them in the message: pick the same to agree, or answer again."
            )
        case Refusal.STALE:
            return (
                "This request was changed after you looked at it. "
                "Read the new version in the message and approve that one."
            )
        case Refusal.VOTED if is_question(request):
            needed = request.required if request else 2
            return f"You already gave this answer. It needs {needed} different people to agree on it."
        case Refusal.VOTED:
            needed = request.required if request else 2
            return f"You already approved this request. It needs approvals from {needed} different people."
        case Refusal.UNKNOWN_GROUPS:
            return "Your approver group membership could not be checked just now. Try again in a minute."
        case Refusal.NO_ALWAYS:
            return "Always allow is not available here: this request needs more than one approval."
        case Refusal.INVALID:
            return (
                "This request's cost cannot be counted against its budget, so it cannot be approved. Deny it."
            )
        case Refusal.CHANGED:
            return "This request changed while your approval was being recorded, so nothing was approved. Try again."
        case Refusal.OTHER_WORKSPACE:
            return "This request belongs to another Slack workspace: only its own people can decide it."
        case _:  # Refusal.NOT_APPROVER
            who = targets(request.approvers) if request and request.approvers else "the approvers"
            return f"You are not an approver for this request. It can be decided by {who}."


FOREIGN_ORG = (
    "You are not allowed to act on approval requests from another organisation. "
    "Nothing was changed. Ask someone in the workspace that installed the approval bot."
)
"""A click, form or command by someone whose workspace the bot does not trust (Slack Connect)."""
ORG_NOT_KNOWN_YET = (
    "The approval bot cannot tell yet which workspace it is installed in (Slack did not answer it). "
    "Nothing was changed. Try again in a minute."
)
"""Any action while the worker has not learned its own workspace (``auth.test``) yet."""
NOT_ALLOWED_TITLE = "Not allowed"
