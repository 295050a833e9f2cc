"""The modals a request opens: Deny (and Deny and stop), Modify, the answer form, View full input."""

from __future__ import annotations

from ..approvals.questions import Problem

DENY_MODAL_TITLE = "Deny request"
DENY_MODAL_SUBMIT = "Deny"
DENY_MODAL_CLOSE = "Cancel"
DENY_REASON_LABEL = "Reason"
"""Slack adds "(optional)" itself to an optional input."""
DENY_REASON_HINT = "The agent receives this verbatim."
DENY_MODAL_INTRO = "The agent will be told that you denied this request, and why."
DENY_STOP_MODAL_TITLE = "Deny and stop"
DENY_STOP_MODAL_SUBMIT = "Deny and stop"
DENY_STOP_MODAL_INTRO = (
    "The agent will be told that you denied this request, and why, and its run stops here: "
    "nothing else runs until someone starts it again."
)
DECLINE_MODAL_TITLE = "Decline question"
DECLINE_MODAL_SUBMIT = "Decline"
DECLINE_MODAL_INTRO = "The agent will be told that you declined to answer, and why."


MODIFY_MODAL_TITLE = "Modify and approve"
MODIFY_MODAL_SUBMIT = "Approve"
MODIFY_MODAL_INTRO = "Edit *{tool}* and approve it. The agent runs exactly what you submit."
FIELD_TOO_LARGE = (
    "*{label}* is too large to edit here ({size:,} characters; a Slack text input holds {limit:,}). "
    "It stays as it is."
)
NOTHING_EDITABLE = "This input is too large to edit in Slack. Approve or deny it as it is."


ANSWER_MODAL_TITLE = "Answer the agent"
ANSWER_MODAL_SUBMIT = "Send answers"


CHOOSE_MANY = "Choose one or more…"


OWN_ANSWER_LABEL = "Your answer for “Other…”"
"""Slack adds "(optional)" to it, and rightly: it is used only with "Other…"."""
OWN_ANSWER_HINT = "Choose “Other…” above to send this instead of the options."
ANSWER_PROBLEMS = {
    Problem.NO_CHOICE: "Choose an answer.",
    Problem.OTHER_WITHOUT_TEXT: "You chose “Other…”: type your answer here.",
    Problem.TEXT_WITHOUT_OTHER: "To send this answer, choose “Other…” above; or clear this field.",
}
"""Shown under the form's field a question's problem is about (``Problem.in_typed_field``)."""


NOT_A_QUESTION = "This request is not a question the form can show. Approve or deny it instead."


FULL_INPUT_TITLE = "Full input"
FULL_INPUT_PAGE = "page {page} of {pages}"
FULL_INPUT_CHANGED = "*With the changes* (what runs)"
FULL_INPUT_ASKED = "*As the agent asked*"
NEXT_PAGE = "Next page"
PREVIOUS_PAGE = "Previous page"
CLOSE = "Close"
LOADING = "Loading…"
