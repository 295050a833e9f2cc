"""Every action_id, callback_id and block_id the bot sends, in one place.

Each button's ``value`` carries the request id, so one listener serves every
request and a click can only ever decide the request it was shown on.
"""

from enum import StrEnum


class Action(StrEnum):
    APPROVE = "approval.approve"
    MODIFY = "approval.modify"
    ANSWER = "approval.answer"
    ALWAYS_ALLOW = "approval.always_allow"
    REMOVE_RULE = "rules.remove"
    DENY = "approval.deny"
    DENY_STOP = "approval.deny_stop"
    """Deny, and end the agent's run (``interrupt``), not just this call."""
    VIEW_INPUT = "approval.view_input"
    CHOOSE_ANSWER = "approval.choose_answer"
    """The menu on a request message holding one single-select question."""
    INPUT_PREVIOUS = "approval.input_page.previous"
    INPUT_NEXT = "approval.input_page.next"
    """Previous/Next in the "View full input" modal; value ``"<request id> <page>"``
    (two ids: action_ids are unique within a block)."""


class Modal(StrEnum):
    DENY = "approval.deny_modal"
    DENY_STOP = "approval.deny_stop_modal"
    MODIFY = "approval.modify_modal"
    ANSWER = "approval.answer_modal"
    FULL_INPUT = "approval.full_input"
    NOTICE = "approval.notice"


class Field(StrEnum):
    """block_id / action_id of modal inputs."""

    REASON_BLOCK = "reason"
    REASON_INPUT = "reason_input"


EDIT_INPUT = "value"
"""action_id of every field input in the Modify modal (the block_id names the field)."""


def edit_block(key: str) -> str:
    return f"edit.{key}"


def edit_key(block_id: str) -> str | None:
    return block_id.removeprefix("edit.") if block_id.startswith("edit.") else None


CHOICE_INPUT = "choice"
OWN_ANSWER_INPUT = "text"
"""action_ids in the answer modal: the options picked, and the answer typed instead."""


CHOICE_PREFIX = "answer"
OWN_ANSWER_PREFIX = "other"


def choice_block(index: int) -> str:
    return f"{CHOICE_PREFIX}.{index}"


def own_answer_block(index: int) -> str:
    return f"{OWN_ANSWER_PREFIX}.{index}"


def question_index(block_id: str, prefix: str) -> int | None:
    """``question_index("answer.2", "answer")`` → 2; None for any other block."""
    head, _, index = block_id.partition(".")
    return int(index) if head == prefix and index.isdigit() else None


SLASH_COMMAND = "/approvals"

REQUEST_METADATA_EVENT = "approval_request"
"""``metadata.event_type`` of every request message; its payload names the request,
so a message whose post was never recorded can be found again."""


ACTIONS_BLOCK_PREFIX = "approval.actions."


def actions_block(request_id: str, revision: int = 0) -> str:
    """The buttons' block: the revision shown rides along, so an approval of an
    edited-since version is refused instead of approving what nobody saw."""
    return f"{ACTIONS_BLOCK_PREFIX}{request_id}.{revision}"


def form_metadata(request_id: str, revision: int | None = None) -> str:
    """A modal's ``private_metadata``: the request, and the revision the form showed.

    A Modify form approves what it showed: submitted again (a replay), or
    after someone else's edit, it is refused as stale."""
    return request_id if revision is None else f"{request_id}.{revision}"


def parse_form_metadata(value: str) -> tuple[str, int | None]:
    request_id, _, revision = value.partition(".")
    return request_id, int(revision) if revision.isdigit() else None


def shown_revision(block_id: str) -> int | None:
    """The revision in an ``actions_block`` id; None for any other block."""
    if not block_id.startswith(ACTIONS_BLOCK_PREFIX):
        return None
    revision = block_id.rsplit(".", 1)[-1]
    return int(revision) if revision.isdigit() else None


def shown_request(block_id: str) -> str | None:
    """The request id in an ``actions_block`` id; None for any other block.

    A menu carries no ``value`` of its own: its block names the request."""
    if not block_id.startswith(ACTIONS_BLOCK_PREFIX):
        return None
    request_id, dot, revision = block_id.removeprefix(ACTIONS_BLOCK_PREFIX).rpartition(".")
    return request_id if dot and request_id and revision.isdigit() else None
