"""The modals a request opens: Modify, Deny (and Deny and stop), the answer form, and notices."""

from __future__ import annotations

from typing import Any

from ... import text
from ...approvals import edits, questions
from ...approvals.model import ApprovalRequest
from .. import limits, mrkdwn
from ..ids import (
    CHOICE_INPUT,
    EDIT_INPUT,
    OWN_ANSWER_INPUT,
    Field,
    Modal,
    choice_block,
    edit_block,
    own_answer_block,
)
from .kit import form, input_block, modal, plain_text, section, text_input
from .question import menu_question


def loading_modal(title: str) -> dict[str, Any]:
    """Opened at once (trigger_id lives 3 s), then replaced by the real view."""
    return modal(Modal.NOTICE, title, [section(text.modals.LOADING)])


def notice_modal(title: str, markdown: str) -> dict[str, Any]:
    """A modal that only says ``markdown`` (a refusal, a request that ended)."""
    return modal(Modal.NOTICE, title, [section(markdown)])


def answer_modal(request: ApprovalRequest) -> dict[str, Any]:
    """A form: per question, a required choice that includes "Other…", and a field for that answer.

    A question the message offers a menu for reaches this form only through
    its *Other…* button, so there that choice comes already made.

    What Slack shows matches the rules: the choice is required (Slack marks
    nothing), and the typed answer is optional (Slack adds "(optional)"),
    used only with "Other…" (``questions.answers`` checks that).
    The question's text is the choice's label, shown once.
    """
    asked = questions.parse(request.tool_name, request.tool_input)
    if asked is None:
        return notice_modal(text.modals.ANSWER_MODAL_TITLE, text.modals.NOT_A_QUESTION)
    other = menu_question(asked) is not None
    blocks: list[dict[str, Any]] = []
    for index, question in enumerate(asked):
        options = [
            {
                "text": plain_text(o.label, limits.OPTION_TEXT),
                # The index, not the label: labels may exceed the value limit.
                "value": str(i),
                **({"description": plain_text(o.description, limits.OPTION_TEXT)} if o.description else {}),
            }
            for i, o in enumerate(question.options)  # ≤ 10 (questions.Question): a select holds 100
        ]
        # "Other…" carries the index one past the options (questions.answers).
        options.append(
            {
                "text": plain_text(text.message.OTHER_OPTION, limits.OPTION_TEXT),
                "value": str(len(question.options)),
            }
        )
        if question.multiSelect and len(options) <= limits.CHECKBOX_OPTIONS:
            element: dict[str, Any] = {"type": "checkboxes", "action_id": CHOICE_INPUT, "options": options}
        else:
            element = {
                "type": "multi_static_select" if question.multiSelect else "static_select",
                "action_id": CHOICE_INPUT,
                "placeholder": plain_text(
                    text.modals.CHOOSE_MANY if question.multiSelect else text.message.CHOOSE, 150
                ),
                "options": options,
            }
            if other and not question.multiSelect:
                element["initial_option"] = options[-1]
        label = f"{question.header}: {question.question}" if question.header else question.question
        blocks.append(input_block(choice_block(index), label, element, optional=False))
        own = text_input(OWN_ANSWER_INPUT, multiline=False)
        blocks.append(
            input_block(
                own_answer_block(index),
                text.modals.OWN_ANSWER_LABEL,
                own,
                optional=True,
                hint=text.modals.OWN_ANSWER_HINT,
            )
        )
    # The revision shown rides along: answers sent from a form opened before
    # another person proposed answers are refused as stale (N-of-M), as Modify's are.
    return form(
        Modal.ANSWER,
        text.modals.ANSWER_MODAL_TITLE,
        text.modals.ANSWER_MODAL_SUBMIT,
        request.id,
        blocks,
        revision=request.revision,
    )


def deny_modal(request: ApprovalRequest, *, stop: bool = False) -> dict[str, Any]:
    """Asks for an optional reason; titled for what the button said (Decline on a question,
    Deny and stop with ``stop``)."""
    reason = input_block(
        Field.REASON_BLOCK.value,
        text.modals.DENY_REASON_LABEL,
        text_input(Field.REASON_INPUT.value, multiline=True),
        optional=True,
        hint=text.modals.DENY_REASON_HINT,
    )
    if questions.parse(request.tool_name, request.tool_input) is not None:
        callback, title, submit, intro = (
            Modal.DENY,
            text.modals.DECLINE_MODAL_TITLE,
            text.modals.DECLINE_MODAL_SUBMIT,
            text.modals.DECLINE_MODAL_INTRO,
        )
    elif stop:
        callback, title, submit, intro = (
            Modal.DENY_STOP,
            text.modals.DENY_STOP_MODAL_TITLE,
            text.modals.DENY_STOP_MODAL_SUBMIT,
            text.modals.DENY_STOP_MODAL_INTRO,
        )
    else:
        callback, title, submit, intro = (
            Modal.DENY,
            text.modals.DENY_MODAL_TITLE,
            text.modals.DENY_MODAL_SUBMIT,
            text.modals.DENY_MODAL_INTRO,
        )
    view = form(callback, title, submit, request.id, [section(intro), reason])
    view["close"] = plain_text(text.modals.DENY_MODAL_CLOSE, limits.MODAL_BUTTON)
    return view


def deny_stop_modal(request: ApprovalRequest) -> dict[str, Any]:
    """The reason form of *Deny and stop*."""
    return deny_modal(request, stop=True)


def modify_modal(request: ApprovalRequest) -> dict[str, Any]:
    """The request's input as editable fields; too-large fields are shown as such, not cut."""
    blocks: list[dict[str, Any]] = [
        section(text.modals.MODIFY_MODAL_INTRO.format(tool=mrkdwn.inline(request.tool_name, 200)))
    ]
    editable = 0
    for field in edits.fields_for(request.tool_name, request.proposed_input):
        value = edits.current_value(field, request.proposed_input)
        # What the field shows (characters a reader cannot see, by name: submitted
        # unchanged, that is what runs), counted as Slack may count it (emoji twice):
        # an initial_value over max_length is refused.
        shown = mrkdwn.clean(value)
        if mrkdwn.size(shown) > limits.PLAIN_TEXT_INPUT:
            blocks.append(
                section(
                    text.modals.FIELD_TOO_LARGE.format(
                        label=field.label, size=len(value), limit=limits.PLAIN_TEXT_INPUT
                    )
                )
            )
            continue
        editable += 1
        element = text_input(EDIT_INPUT, multiline=field.multiline, initial=shown)
        blocks.append(input_block(edit_block(field.key), field.label, element, optional=not field.required))
    if not editable:
        return notice_modal(text.modals.MODIFY_MODAL_TITLE, text.modals.NOTHING_EDITABLE)
    return form(
        Modal.MODIFY,
        text.modals.MODIFY_MODAL_TITLE,
        text.modals.MODIFY_MODAL_SUBMIT,
        request.id,
        blocks,
        revision=request.revision,
    )
