"""``/approvals`` and the App Home tab (what waits for you, what you decided), and the team
allow-list (``/approvals rules``).
"""

from __future__ import annotations

from ..approvals.names import AuditEvent
from ..slack.mrkdwn import inline

RULES_HEADING = "Team allow-list"
RULES_INTRO = "Calls matching these rules are approved without asking. Each was added with *Always allow*."
NO_RULES = "The team allow-list is empty. *Always allow* on a request adds its rule here."
RULE_LINE = "`{rule}`: {words}. Added by <@{user}> on route *{route}* <!date^{epoch}^{{date_short_pretty}}|{fallback}>"
REMOVE = "Remove"
RULES_MORE = "…and {count} more, not shown: remove some to see the rest."


def rule_removed(rule: object) -> str:
    """A removed rule came from a tool input: escaped, so it cannot mention anyone."""
    return f"Removed `{inline(str(rule), 500)}` from the team allow-list."


RULE_ALREADY_GONE = "That rule was already removed."


COMMAND_HELP = (
    "`/approvals` lists the requests waiting for your decision. "
    "`/approvals rules` lists the team allow-list (calls approved without asking), with a button to remove each rule."
)


PENDING_HEADING = "Waiting for you"
NOTHING_PENDING = "Nothing is waiting for your decision."
PENDING_LINE = "*{tool}* {summary}\n{agent}<{link}|Open the request> · asked <!date^{epoch}^{{date_short_pretty}} at {{time}}|{fallback}>"
PENDING_IN_CHANNEL = "*{tool}* {summary}\n{agent}in <#{channel}> · asked <!date^{epoch}^{{date_short_pretty}} at {{time}}|{fallback}>"
PENDING_NOT_POSTED = "*{tool}* {summary}\n{agent}not posted yet · asked <!date^{epoch}^{{date_short_pretty}} at {{time}}|{fallback}>"
PENDING_MORE = "…and {count} more."
RECENT_HEADING = "Your recent decisions"
NO_RECENT = "You have not decided anything yet."
RECENT_LINE = "{event} request `{request}` <!date^{epoch}^{{date_short_pretty}} at {{time}}|{fallback}>"
RECENT_EVENTS: dict[str, str] = {
    AuditEvent.APPROVED: ":white_check_mark: Approved",
    AuditEvent.ALWAYS_ALLOWED: ":white_check_mark: Always allowed",
    AuditEvent.MODIFIED: ":pencil2: Approved with changes",
    AuditEvent.VOTE: ":ballot_box_with_check: Voted to approve",
    AuditEvent.MODIFIED_VOTE: ":pencil2: Edited and voted to approve",
    AuditEvent.ANSWERED: ":speech_balloon: Answered",
    AuditEvent.ANSWER_PROPOSED: ":speech_balloon: Proposed an answer",
    AuditEvent.ANSWER_VOTE: ":ballot_box_with_check: Agreed with an answer",
    AuditEvent.DENIED: ":no_entry: Denied",
}
HOME_INTRO = "Agent tool calls waiting for approval that you can decide, and what you decided lately."
