"""An AskUserQuestion request's parts: its questions and answers, and the menu that answers
one question in one pick."""

from __future__ import annotations

from typing import Any

from ... import text
from ...approvals import questions
from ...approvals.model import ApprovalRequest, State
from .. import limits, mrkdwn
from ..ids import Action
from .kit import context, plain_text, section
from .rooms import ROOMS, Room


def given_answers(request: ApprovalRequest) -> dict[str, str]:
    """The answers sent to the agent; {} before the request was answered."""
    answered = (request.updated_input or {}).get("answers") if request.state is State.ANSWERED else None
    return answered if isinstance(answered, dict) else {}


def proposed_answers(request: ApprovalRequest) -> dict[str, str]:
    """Answers a person proposed that await the agreement of others (N-of-M); {} when none."""
    if request.state is not State.PENDING or request.required <= 1 or not request.edited_by:
        return {}
    proposed = (request.updated_input or {}).get("answers")
    return proposed if isinstance(proposed, dict) else {}


_QUESTION_TEXT = 1500
_LABEL = 200
"""Characters of an option's label in the message (a menu or form shows 75; the agent gets it whole)."""


def _label(room: Room) -> int:
    # In the smallest rooms labels shrink too: 4 questions of 10 long options must leave
    # room for the policy's people (TARGETS_LINE), whom a question may not push off the card.
    return min(_LABEL, room.question)


def question_blocks(
    asked: list[questions.Question],
    answered: dict[str, str],
    room: Room = ROOMS[0],
    *,
    proposed: bool = False,
) -> list[dict[str, Any]]:
    """Each question with its options, and its answer once there is one (3 blocks a question at most).

    ``proposed``: ``answered`` holds answers still awaiting others' agreement (N-of-M)."""
    out: list[dict[str, Any]] = []
    for question in asked:
        out.append(section(_question_heading(question, "  ", room.question)))
        out.append(context(_option_lines(question, room)))
        if question.question in answered:
            answer = mrkdwn.inline(str(answered[question.question]), room.question)
            out.append(
                section(
                    (text.message.PROPOSED_ANSWER_LINE if proposed else text.message.ANSWER_LINE).format(
                        answer=answer
                    )
                )
            )
    return out


def _option_lines(question: questions.Question, room: Room) -> str:
    """A question's options, one line each: the label in bold, then its description."""
    return "\n".join(
        f"• *{mrkdwn.inline(o.label, _label(room))}*"
        + (f" — {mrkdwn.inline(o.description, room.option)}" if o.description else "")
        for o in question.options
    )


def questions_cut(asked: list[questions.Question], answered: dict[str, str], room: Room) -> bool:
    """Whether ``question_blocks`` left any text out (then *View full input* shows it)."""

    def cut(value: str, budget: int) -> bool:
        return mrkdwn.inline(value, budget) != mrkdwn.escape(mrkdwn.clean(value))

    for question in asked:
        if (
            cut(question.header, 150)
            or cut(question.question, room.question)
            or mrkdwn.size(_option_lines(question, room)) > limits.CONTEXT_TEXT
            or any(cut(o.label, _label(room)) or cut(o.description, room.option) for o in question.options)
            or cut(str(answered.get(question.question, "")), room.question)
        ):
            return True
    return False


def _question_heading(question: questions.Question, separator: str, budget: int = _QUESTION_TEXT) -> str:
    heading = f"*{mrkdwn.inline(question.header, 150)}*{separator}" if question.header else ""
    return heading + mrkdwn.inline(question.question, budget)


def menu_question(asked: list[questions.Question]) -> questions.Question | None:
    """The question a menu on the message answers in one pick: only a request
    of one single-select question. Several questions, or several picks, go
    through the form so that all the answers are sent together."""
    if len(asked) != 1 or asked[0].multiSelect:
        return None
    return asked[0]


MENU_OPTIONS = limits.SELECT_OPTIONS
"""Options of the question a menu offers (a question holds far fewer: ``questions.Question``)."""


def answer_menu(asked: list[questions.Question]) -> dict[str, Any] | None:
    """A ``static_select`` of the question's options (*Other…* is a button beside it); None
    when the request needs the form (see :func:`menu_question`)."""
    question = menu_question(asked)
    if question is None:
        return None
    options = [
        # The index, not the label: labels may exceed the 75-character value limit.
        {"text": plain_text(option.label, limits.OPTION_TEXT), "value": str(index)}
        for index, option in enumerate(question.options[:MENU_OPTIONS])
    ]
    return {
        "type": "static_select",
        "action_id": Action.CHOOSE_ANSWER.value,
        "placeholder": plain_text(text.message.CHOOSE, limits.OPTION_TEXT),
        "options": options,
    }


def menu_answer(request: ApprovalRequest, picked: str) -> dict[str, Any] | None:
    """The input that answers ``request`` with the menu option whose value is
    ``picked`` (what the SDK expects: ``{**input, "answers": {question: label}}``),
    or None when the request shows no menu or offers no such option.

    The label is the stored question's, found by the index :func:`answer_menu`
    gave it: never text from the payload, and never a pick on another request."""
    asked = questions.parse(request.tool_name, request.tool_input)
    question = menu_question(asked) if asked is not None else None
    if asked is None or question is None:
        return None
    offered = {str(index): index for index in range(min(len(question.options), MENU_OPTIONS))}
    if picked not in offered:
        return None
    return {**request.tool_input, "answers": questions.answers(asked, {0: [offered[picked]]}, {})}
