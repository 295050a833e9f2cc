"""Pure Block Kit builders: domain objects in, Slack JSON out.

No I/O here. Every size is cut to ``limits`` and every piece of tool input
goes through ``mrkdwn`` so it can neither ping anyone nor break the layout.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import text
from ..approvals import edits, grants, questions, tools
from ..approvals.allowlist import TeamRule
from ..approvals.audit import Entry
from ..approvals.model import ApprovalRequest, State
from . import limits, mrkdwn
from .ids import (
    CHOICE_INPUT,
    EDIT_INPUT,
    OWN_ANSWER_INPUT,
    Action,
    Field,
    Modal,
    actions_block,
    choice_block,
    edit_block,
    form_metadata,
    own_answer_block,
)


@dataclass(frozen=True)
class Message:
    text: str
    """Fallback and notification text."""
    blocks: list[dict[str, Any]]


def _plain(value: str, budget: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": mrkdwn.plain(value, budget), "emoji": True}


def _mrkdwn(markdown: str, budget: int) -> dict[str, Any]:
    # verbatim: without it Slack links URLs and #channel names and parses some
    # mentions even when escaped; our own <@U…> and <!date…> tokens still render.
    return {"type": "mrkdwn", "text": mrkdwn.cut(markdown, budget), "verbatim": True}


def _section(markdown: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(markdown, limits.SECTION_TEXT)}


def _plain_section(value: str) -> dict[str, Any]:
    return {"type": "section", "text": _plain(value, limits.SECTION_TEXT)}


def _context(*markdown: str) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [_mrkdwn(m, limits.CONTEXT_TEXT) for m in markdown[: limits.CONTEXT_ELEMENTS]],
    }


_NOTE_ROOM = 100
"""Room kept in a section for the "… [N more characters]" note."""


def _labelled_code(label: str, value: str, preview: int = limits.PREVIEW_TEXT) -> tuple[dict[str, Any], int]:
    """A section: bold label, then the value as an inert code block."""
    heading = f"*{label}*\n"
    code, hidden = mrkdwn.code_block(value, min(preview, limits.SECTION_TEXT - len(heading) - _NOTE_ROOM))
    if hidden:
        code += "\n" + text.TRUNCATED.format(hidden=hidden)
    return _section(heading + code), hidden


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def input_blocks(
    tool_name: str, tool_input: dict[str, Any], preview: int = limits.PREVIEW_TEXT
) -> tuple[list[dict[str, Any]], bool]:
    """A readable rendering of a tool input (its fields as ``tools.tool`` says), and whether any of it was cut.

    ``preview``: characters each field may show (as Slack counts them)."""
    blocks: list[dict[str, Any]] = []
    shown: set[str] = set()
    truncated = False
    shape = tools.tool(tool_name)
    for field in shape.shown_as_text:
        value = tool_input.get(field.key)
        if isinstance(value, str) and value:
            line = f"{field.label}: {value}"
            plain = _plain(line, min(preview, limits.SECTION_TEXT))
            blocks.append({"type": "section", "text": plain})
            truncated |= plain["text"] != mrkdwn.clean(line)
            shown.add(field.key)
    for field in shape.shown_as_code:
        value = tool_input.get(field.key)
        if value is None:
            continue
        block, hidden = _labelled_code(
            field.label, value if isinstance(value, str) else _json(value), preview
        )
        blocks.append(block)
        truncated |= hidden > 0
        shown.add(field.key)
    rest = {k: v for k, v in tool_input.items() if k not in shown}
    if rest or not blocks:
        block, hidden = _labelled_code("Input" if not shown else "Other input", _json(rest), preview)
        blocks.append(block)
        truncated |= hidden > 0
    return blocks, truncated


def _summary(tool_input: dict[str, Any]) -> str:
    shown = tools.summary(tool_input)
    return shown if shown is not None else _json(tool_input)


def _when(template: str, epoch: float) -> str:
    return template.format(epoch=int(epoch), fallback=text.utc(epoch))


@dataclass(frozen=True)
class _Room:
    """How much each variable part of a request message may show (as ``mrkdwn.size`` counts)."""

    preview: int
    """One input field."""
    diff: int
    """One side of a changed field."""
    question: int
    """One question's text, and one answer."""
    option: int
    """One option's description."""
    line: int
    """A title, a line of names, the paging line."""
    reason: int
    """A deny reason."""


_ROOMS = (
    _Room(
        preview=limits.PREVIEW_TEXT,
        diff=900,
        question=1500,
        option=300,
        line=1000,
        reason=limits.SECTION_TEXT - 20,
    ),
    _Room(preview=1200, diff=600, question=800, option=200, line=600, reason=1500),
    _Room(preview=700, diff=350, question=400, option=120, line=400, reason=800),
    _Room(preview=400, diff=200, question=250, option=75, line=250, reason=400),
    _Room(preview=200, diff=100, question=120, option=40, line=150, reason=200),
    _Room(preview=100, diff=60, question=60, option=20, line=100, reason=100),
)
"""Tried in order until the whole message fits ``limits.MESSAGE_TEXT_BUDGET``; the
last one fits any request (tests/test_message_budget.py tries the worst)."""

_OUTCOME_LINE = 600
"""The outcome line names who decided: never cut below this."""


def text_size(blocks: list[dict[str, Any]]) -> int:
    """All the text of ``blocks`` as Slack counts it against a message's total (``mrkdwn.size``)."""
    total = 0
    stack: list[Any] = [blocks]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("type") in ("plain_text", "mrkdwn") and isinstance(item.get("text"), str):
                total += mrkdwn.size(item["text"])
            else:
                stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return total


def request_message(request: ApprovalRequest, spent: float | None = None) -> Message:
    """The request as Slack shows it: buttons while pending, the outcome after.

    ``spent`` is what the request's route approved today (shown against its budget).
    The whole message fits ``limits.MESSAGE_TEXT_BUDGET``: long parts are cut
    shorter until it does, and *View full input* shows them whole.
    """
    for room in _ROOMS:
        message = _request_message(request, spent, room)
        if text_size(message.blocks) <= limits.MESSAGE_TEXT_BUDGET:
            break
    return message


def _request_message(request: ApprovalRequest, spent: float | None, room: _Room) -> Message:
    pending = request.state is State.PENDING
    asked = questions.parse(request.tool_name, request.tool_input)
    if asked is not None:
        title = text.QUESTION_HEADER[request.state].format(agent=request.agent or text.THE_AGENT)
    else:
        title = text.HEADER[request.state].format(tool=request.tool_name)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": _plain(title, limits.HEADER_TEXT)}]
    if pending and request.mention:
        # Mentions come from the policy file: kept whole whatever the room (see _targets_line).
        blocks.append(
            {"type": "section", "text": _mrkdwn(_targets_line(text.PAGING, request.mention), _TARGETS_LINE)}
        )

    about = []
    if request.agent:
        about.append(text.AGENT_LINE.format(agent=mrkdwn.inline(request.agent, min(200, room.line))))
    if request.requested_by:
        about.append(text.REQUESTED_BY_LINE.format(user=mrkdwn.inline(request.requested_by, 100)))
    if request.title:
        about.append(mrkdwn.inline(request.title, min(500, room.line)))
    if request.rule and request.rule != "default":
        about.append(text.RULE_LINE_POLICY.format(rule=mrkdwn.inline(request.rule, min(200, room.line))))
    if about:
        blocks.append(_context(*about))

    if asked is not None:
        answered, proposed = _answers(request), _proposed_answers(request)
        shown_answers = answered or proposed
        body = question_blocks(asked, shown_answers, room, proposed=bool(proposed))
        truncated = _questions_cut(asked, shown_answers, room)
        if proposed:
            # N-of-M: the answers awaiting agreement, and who proposed them.
            how = text.AGREE_BY_MENU if answer_menu(asked) is not None else text.AGREE_BY_FORM
            by = text.PROPOSED_BY.format(user=mrkdwn.inline(request.edited_by, 100), how=how)
            body.append(_context(mrkdwn.cut(by, room.line)))
    else:
        # What runs (or ran) leads: after a Modify, the edited input; the original follows in the changes.
        shown = (
            request.proposed_input
            if request.modified and request.state in (State.PENDING, State.APPROVED)
            else request.tool_input
        )
        body, truncated = input_blocks(request.tool_name, shown, room.preview)
    blocks.extend(body)
    blocks.extend(_cost(request, spent))
    if pending:
        blocks.extend(_team(request))

    footer = [text.REQUEST_ID_LINE.format(id=request.id)]
    if pending:
        if request.on_timeout == "escalate" and request.timeout_at and not request.timeout_escalated:
            footer.append(_when(text.ESCALATES_LINE, request.timeout_at))
        expires = request.expires_at
        footer.append(_when(text.EXPIRES_LINE, expires) if expires else text.NEVER_EXPIRES)
    blocks.append(_context(*footer))

    buttons: list[dict[str, Any]] = []
    if pending and asked is not None:
        # One single-select question is answered from a menu on the message itself, and
        # *Other…* is a button beside it, not an option: Slack's clients keep a menu's
        # choice and send nothing when it is picked again, so a form closed after picking
        # an "Other…" option would leave no way back but answering something else.
        menu = answer_menu(asked)
        if menu is not None:
            buttons += [menu, _button(text.OTHER_OPTION, Action.ANSWER, request.id)]
        else:
            buttons.append(_button(text.ANSWER, Action.ANSWER, request.id, style="primary"))
        buttons.append(_button(text.DECLINE, Action.DENY, request.id, style="danger"))
    elif pending:
        if request.modified:
            changes, cut = _changes(request, room)
            blocks.extend(changes)
            truncated |= cut
        buttons.append(_button(text.APPROVE, Action.APPROVE, request.id, style="primary"))
        granting = always_allow_block(request)
        if granting is not None:
            buttons.append(_button(text.ALWAYS_ALLOW, Action.ALWAYS_ALLOW, request.id))
            blocks.append(granting)
        buttons += [
            _button(text.MODIFY, Action.MODIFY, request.id),
            _button(text.DENY, Action.DENY, request.id, style="danger"),
            _button(text.DENY_STOP, Action.DENY_STOP, request.id),
        ]
    else:
        blocks.append(
            {
                "type": "context",
                "elements": [_mrkdwn(text.outcome_line(request), max(_OUTCOME_LINE, room.line))],
            }
        )
        if request.state is State.APPROVED and request.always and (granted := always_allow_block(request)):
            blocks.append(granted)
        if request.state is State.APPROVED and request.modified:
            changes, cut = _changes(request, room)
            blocks.extend(changes)
            truncated |= cut
        if request.reason and request.state is State.DENIED:
            reason = text.REASON_PLAIN.format(reason=request.reason)
            blocks.append({"type": "section", "text": _plain(reason, room.reason)})
    if truncated:
        buttons.append(_button(text.VIEW_FULL_INPUT, Action.VIEW_INPUT, request.id))
    if buttons:
        blocks.append(
            {"type": "actions", "block_id": actions_block(request.id, request.revision), "elements": buttons}
        )

    notification = text.NOTIFICATION.format(
        tool=request.tool_name,
        summary=mrkdwn.plain(_summary(request.tool_input), limits.NOTIFICATION_SUMMARY),
    )
    # Mentions must stay raw to notify; they come from the policy file, never from tool input.
    paging = text.targets(request.mention) + " " if pending and request.mention else ""
    fallback = mrkdwn.cut(paging + mrkdwn.escape(notification), limits.MESSAGE_TEXT)
    return Message(text=fallback, blocks=blocks[: limits.MESSAGE_BLOCKS])


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
    lines = [text.ALWAYS_ALLOW_GRANTS if pending else text.ALWAYS_ALLOWED_GRANTS]
    lines += [
        text.GRANT_RULE.format(rule=mrkdwn.escape(str(r)), words=mrkdwn.escape(r.describe()))
        for r in granted.rules
    ]
    lines += [text.GRANT_DIRECTORY.format(directory=mrkdwn.escape(d)) for d in granted.directories]
    lines.append(text.ALWAYS_ALLOW_TEAM if pending else text.ALWAYS_ALLOWED_TEAM)
    shown = "\n".join(lines)
    # Slack counts the escaped text, and astral characters may count twice.
    if len(shown) + sum(ord(c) > 0xFFFF for c in shown) > limits.SECTION_TEXT:
        return None
    # verbatim: Slack would otherwise turn a path or URL in a rule into a link.
    return {"type": "section", "text": {"type": "mrkdwn", "text": shown, "verbatim": True}}


def _cost(request: ApprovalRequest, spent: float | None) -> list[dict[str, Any]]:
    if request.cost is None:
        return []
    lines = [text.COST.format(cost=request.cost)]
    if spent is not None:
        rule = mrkdwn.inline(request.rule, 200)
        if request.budget is not None:
            lines.append(text.SPENT_OF_BUDGET.format(rule=rule, spent=spent, budget=request.budget))
            if request.state is State.PENDING and spent + request.cost > request.budget:
                lines.append(text.OVER_BUDGET.format(rule=rule))
        else:
            lines.append(text.SPENT_TODAY.format(rule=rule, spent=spent))
    return [_context(*lines)]


def _team(request: ApprovalRequest) -> list[dict[str, Any]]:
    """Who may decide, how many have approved, who was escalated to."""
    lines = [_targets_line(text.WHO_DECIDES, request.approvers) if request.approvers else text.ANYONE_DECIDES]
    if request.required > 1:
        # A question's votes are people agreeing on one answer (DECIDE).
        asked = questions.parse(request.tool_name, request.tool_input) is not None
        if request.votes:
            template = text.AGREED_BY if asked else text.PROGRESS_BY
            progress = template.format(count=len(request.votes), required=request.required, who="{who}")
            lines.append(_targets_line(progress, [v.user for v in request.votes]))
        else:
            lines.append((text.AGREED if asked else text.PROGRESS).format(count=0, required=request.required))
    added = [
        t
        for i in request.escalated
        if i < len(request.escalation)
        for t in request.escalation[i]["approvers"]
    ]
    if added:
        lines.append(_targets_line(text.ESCALATED_TO, list(dict.fromkeys(added))))
    # Every line names people from the policy or from Slack, already fitted to _TARGETS_LINE.
    return [{"type": "context", "elements": [_mrkdwn(line, _TARGETS_LINE) for line in lines]}]


_TARGETS_LINE = 1000
"""A line naming the policy's people (paging, who can decide, escalated to). They are the bot's
own trusted text, so the line is never shrunk with the room (a long question must not unpage
the on-call group); only a policy with more targets than this holds is cut, saying how many more."""


def _targets_line(template: str, ids: Sequence[str], budget: int = _TARGETS_LINE) -> str:
    """``template`` naming ``ids`` (its ``{who}``), as many whole mentions as ``budget`` holds, then "and N more"."""
    line = template.format(who=text.targets(ids))
    if mrkdwn.size(line) <= budget:
        return line

    def naming(count: int) -> str:
        return template.format(
            who=text.TARGETS_MORE.format(who=text.targets(ids[:count]), count=len(ids) - count)
        )

    low, high = 0, len(ids) - 1  # the most mentions that fit, by bisection (a line only grows with more)
    while low < high:
        mid = (low + high + 1) // 2
        if mrkdwn.size(naming(mid)) <= budget:
            low = mid
        else:
            high = mid - 1
    return naming(low)


def _answers(request: ApprovalRequest) -> dict[str, str]:
    answered = (request.updated_input or {}).get("answers") if request.state is State.ANSWERED else None
    return answered if isinstance(answered, dict) else {}


def _proposed_answers(request: ApprovalRequest) -> dict[str, str]:
    """Answers a person proposed that await the agreement of others (N-of-M); {} when none."""
    if request.state is not State.PENDING or request.required <= 1 or not request.edited_by:
        return {}
    proposed = (request.updated_input or {}).get("answers")
    return proposed if isinstance(proposed, dict) else {}


_QUESTION_TEXT = 1500
_LABEL = 200
"""Characters of an option's label in the message (a menu or form shows 75; the agent gets it whole)."""


def _label(room: _Room) -> int:
    # In the smallest rooms labels shrink too: 4 questions of 10 long options must leave
    # room for the policy's people (_TARGETS_LINE), whom a question may not push off the card.
    return min(_LABEL, room.question)


def question_blocks(
    asked: list[questions.Question],
    answered: dict[str, str],
    room: _Room = _ROOMS[0],
    *,
    proposed: bool = False,
) -> list[dict[str, Any]]:
    """Each question with its options, and its answer once there is one (3 blocks a question at most).

    ``proposed``: ``answered`` holds answers still awaiting others' agreement (N-of-M)."""
    out: list[dict[str, Any]] = []
    for question in asked:
        out.append(_section(_question_heading(question, "  ", room.question)))
        out.append(_context(_option_lines(question, room)))
        if question.question in answered:
            answer = mrkdwn.inline(str(answered[question.question]), room.question)
            out.append(
                _section((text.PROPOSED_ANSWER_LINE if proposed else text.ANSWER_LINE).format(answer=answer))
            )
    return out


def _option_lines(question: questions.Question, room: _Room) -> str:
    """A question's options, one line each: the label in bold, then its description."""
    return "\n".join(
        f"• *{mrkdwn.inline(o.label, _label(room))}*"
        + (f" — {mrkdwn.inline(o.description, room.option)}" if o.description else "")
        for o in question.options
    )


def _questions_cut(asked: list[questions.Question], answered: dict[str, str], room: _Room) -> bool:
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
        return notice_modal(text.ANSWER_MODAL_TITLE, text.NOT_A_QUESTION)
    other = menu_question(asked) is not None
    blocks: list[dict[str, Any]] = []
    for index, question in enumerate(asked):
        options = [
            {
                "text": _plain(o.label, limits.OPTION_TEXT),
                # The index, not the label: labels may exceed the value limit.
                "value": str(i),
                **({"description": _plain(o.description, limits.OPTION_TEXT)} if o.description else {}),
            }
            for i, o in enumerate(question.options)  # ≤ 10 (questions.Question): a select holds 100
        ]
        # "Other…" carries the index one past the options (questions.answers).
        options.append(
            {"text": _plain(text.OTHER_OPTION, limits.OPTION_TEXT), "value": str(len(question.options))}
        )
        if question.multiSelect and len(options) <= limits.CHECKBOX_OPTIONS:
            element: dict[str, Any] = {"type": "checkboxes", "action_id": CHOICE_INPUT, "options": options}
        else:
            element = {
                "type": "multi_static_select" if question.multiSelect else "static_select",
                "action_id": CHOICE_INPUT,
                "placeholder": _plain(text.CHOOSE_MANY if question.multiSelect else text.CHOOSE, 150),
                "options": options,
            }
            if other and not question.multiSelect:
                element["initial_option"] = options[-1]
        label = f"{question.header}: {question.question}" if question.header else question.question
        blocks.append(_input(choice_block(index), label, element, optional=False))
        own = _text_input(OWN_ANSWER_INPUT, multiline=False)
        blocks.append(
            _input(
                own_answer_block(index), text.OWN_ANSWER_LABEL, own, optional=True, hint=text.OWN_ANSWER_HINT
            )
        )
    # The revision shown rides along: answers sent from a form opened before
    # another person proposed answers are refused as stale (N-of-M), as Modify's are.
    return _form(
        Modal.ANSWER,
        text.ANSWER_MODAL_TITLE,
        text.ANSWER_MODAL_SUBMIT,
        request.id,
        blocks,
        revision=request.revision,
    )


def _changes(request: ApprovalRequest, room: _Room = _ROOMS[0]) -> tuple[list[dict[str, Any]], bool]:
    """A compact before/after of the fields a person changed (one section each), and whether any was cut."""
    if request.updated_input is None:
        return [], False
    changed = edits.changed_fields(request.tool_input, request.updated_input)
    sections = []
    truncated = False
    for number, key in enumerate(changed[:3]):
        (before, cut_before), (after, cut_after) = (
            _code_preview(_as_text(side.get(key)), room.diff)
            for side in (request.tool_input, request.updated_input)
        )
        truncated |= cut_before or cut_after
        # The key comes from the agent's input: its backticks must not close the fences around the values.
        line = text.CHANGED_FIELD.format(key=mrkdwn.inline_inert(key, 100), before=before, after=after)
        sections.append(_section((text.CHANGES_HEADING + "\n" if number == 0 else "") + line))
    if len(changed) > 3:
        sections.append(
            _context(text.ALSO_CHANGED.format(keys=mrkdwn.inline(", ".join(changed[3:]), room.line)))
        )
    return sections, truncated


def _code_preview(value: str, budget: int) -> tuple[str, bool]:
    """The start of ``value`` for inside a code fence, "…" when cut (never empty: "``````" would not
    render), and whether it was cut."""
    shown, hidden = mrkdwn.fit(value, budget - 3)  # 3: the "…" and a zero-width space at either end
    return mrkdwn.unfenced_ends(shown + mrkdwn.ELLIPSIS if hidden else shown) or " ", hidden > 0


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else _json(value)


def _button(label: str, action: Action, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": _plain(label, limits.BUTTON_TEXT),
        "action_id": action.value,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def _input(
    block_id: str, label: str, element: dict[str, Any], *, optional: bool, hint: str = ""
) -> dict[str, Any]:
    block = {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": _plain(label, 2000),
        "element": element,
    }
    if hint:
        block["hint"] = _plain(hint, 2000)
    return block


def _text_input(action_id: str, *, multiline: bool, initial: str = "") -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": action_id,
        "multiline": multiline,
        "max_length": limits.PLAIN_TEXT_INPUT,
    }
    if initial:
        element["initial_value"] = initial
    return element


def _form(
    callback: Modal,
    title: str,
    submit: str,
    request_id: str,
    blocks: list[dict[str, Any]],
    *,
    revision: int | None = None,
) -> dict[str, Any]:
    """A modal about one request: its id (and the revision shown) ride in private_metadata for the submission."""
    metadata = form_metadata(request_id, revision)
    return _modal(
        callback, title, blocks, submit=_plain(submit, limits.MODAL_BUTTON), private_metadata=metadata
    )


def _question_heading(question: questions.Question, separator: str, budget: int = _QUESTION_TEXT) -> str:
    heading = f"*{mrkdwn.inline(question.header, 150)}*{separator}" if question.header else ""
    return heading + mrkdwn.inline(question.question, budget)


def _modal(callback: Modal, title: str, blocks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    view = {
        "type": "modal",
        "callback_id": callback.value,
        "title": _plain(title, limits.MODAL_TITLE),
        "close": _plain(text.CLOSE, limits.MODAL_BUTTON),
        "blocks": blocks[: limits.MODAL_BLOCKS],
    }
    view.update(extra)
    return view


def deny_modal(request: ApprovalRequest, *, stop: bool = False) -> dict[str, Any]:
    """Asks for an optional reason; titled for what the button said (Decline on a question,
    Deny and stop with ``stop``)."""
    reason = _input(
        Field.REASON_BLOCK.value,
        text.DENY_REASON_LABEL,
        _text_input(Field.REASON_INPUT.value, multiline=True),
        optional=True,
        hint=text.DENY_REASON_HINT,
    )
    if questions.parse(request.tool_name, request.tool_input) is not None:
        callback, title, submit, intro = (
            Modal.DENY,
            text.DECLINE_MODAL_TITLE,
            text.DECLINE_MODAL_SUBMIT,
            text.DECLINE_MODAL_INTRO,
        )
    elif stop:
        callback, title, submit, intro = (
            Modal.DENY_STOP,
            text.DENY_STOP_MODAL_TITLE,
            text.DENY_STOP_MODAL_SUBMIT,
            text.DENY_STOP_MODAL_INTRO,
        )
    else:
        callback, title, submit, intro = (
            Modal.DENY,
            text.DENY_MODAL_TITLE,
            text.DENY_MODAL_SUBMIT,
            text.DENY_MODAL_INTRO,
        )
    view = _form(callback, title, submit, request.id, [_section(intro), reason])
    view["close"] = _plain(text.DENY_MODAL_CLOSE, limits.MODAL_BUTTON)
    return view


def deny_stop_modal(request: ApprovalRequest) -> dict[str, Any]:
    """The reason form of *Deny and stop*."""
    return deny_modal(request, stop=True)


def modify_modal(request: ApprovalRequest) -> dict[str, Any]:
    """The request's input as editable fields; too-large fields are shown as such, not cut."""
    blocks: list[dict[str, Any]] = [
        _section(text.MODIFY_MODAL_INTRO.format(tool=mrkdwn.inline(request.tool_name, 200)))
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
                _section(
                    text.FIELD_TOO_LARGE.format(
                        label=field.label, size=len(value), limit=limits.PLAIN_TEXT_INPUT
                    )
                )
            )
            continue
        editable += 1
        element = _text_input(EDIT_INPUT, multiline=field.multiline, initial=shown)
        blocks.append(_input(edit_block(field.key), field.label, element, optional=not field.required))
    if not editable:
        return notice_modal(text.MODIFY_MODAL_TITLE, text.NOTHING_EDITABLE)
    return _form(
        Modal.MODIFY,
        text.MODIFY_MODAL_TITLE,
        text.MODIFY_MODAL_SUBMIT,
        request.id,
        blocks,
        revision=request.revision,
    )


_RULES_TEXT = 10_000
"""Text the rule lines of ``team_rules`` share (within ``limits.MESSAGE_TEXT_BUDGET``)."""
_RULE_LINE = 200
"""A rule line is never cut shorter than this."""


def team_rules(entries: list[TeamRule]) -> Message:
    """The team allow-list, one section per rule with a Remove button (ephemeral).

    Lines share ``_RULES_TEXT``, so that the whole listing fits Slack's text budget."""
    out: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(text.RULES_HEADING, limits.HEADER_TEXT)},
        _context(text.RULES_INTRO if entries else text.NO_RULES),
    ]
    shown = entries[: limits.MESSAGE_BLOCKS - 3]
    share = max(_RULE_LINE, min(limits.SECTION_TEXT, _RULES_TEXT // max(1, len(shown))))
    for entry in shown:
        line = text.RULE_LINE.format(
            rule=mrkdwn.inline(str(entry.rule), share // 2),
            words=mrkdwn.inline(entry.rule.describe(), share // 3),
            user=mrkdwn.inline(entry.added_by, 30),
            route=mrkdwn.inline(entry.route or "default", 100),
            epoch=int(entry.added_at),
            fallback=text.utc(entry.added_at),
        )
        out.append(
            {
                "type": "section",
                # verbatim: the rule came from a tool input; no auto-links or mentions.
                "text": _mrkdwn(line, share),
                "accessory": _button(text.REMOVE, Action.REMOVE_RULE, entry.id, style="danger"),
            }
        )
    if len(entries) > len(shown):
        out.append(_context(text.RULES_MORE.format(count=len(entries) - len(shown))))
    return Message(text=text.RULES_HEADING, blocks=out)


def loading_modal(title: str) -> dict[str, Any]:
    """Opened at once (trigger_id lives 3 s), then replaced by the real view."""
    return _modal(Modal.NOTICE, title, [_section(text.LOADING)])


def notice_modal(title: str, markdown: str) -> dict[str, Any]:
    return _modal(Modal.NOTICE, title, [_section(markdown)])


_PAGE_RESERVE = 4_000
"""Bytes of a page kept for its heading and the Previous/Next buttons."""


def full_input_modal(request: ApprovalRequest, page: int = 0) -> dict[str, Any]:
    """The whole input as pretty JSON: every character, over as many pages as it needs.

    After a change, what runs comes first, then the input as the agent asked it.
    One page is one view within ``limits.VIEW_BUDGET`` bytes and
    ``limits.MODAL_BLOCKS`` blocks; *Previous* and *Next* (``Action.INPUT_PREVIOUS``,
    ``Action.INPUT_NEXT``, value ``"<request id> <page>"``) turn to another page with ``views.update``.
    """
    documents = [("", _json(request.tool_input))]
    if request.state is State.ANSWERED and request.updated_input is not None:
        documents = [("", _json(request.updated_input))]  # the questions, and the answers sent
    elif request.modified:
        documents = [
            (text.FULL_INPUT_CHANGED, _json(request.updated_input)),
            (text.FULL_INPUT_ASKED, documents[0][1]),
        ]
    starts = _page_starts(tuple(documents))
    page = max(0, min(page, len(starts) - 1))
    shown = _page(tuple(documents), starts, page)
    title = f"{request.tool_name} · request {request.id}"
    if len(starts) > 1:
        title += " · " + text.FULL_INPUT_PAGE.format(page=page + 1, pages=len(starts))
    blocks: list[dict[str, Any]] = [_plain_section(title), *shown]
    turns = []
    if page > 0:
        turns.append(_button(text.PREVIOUS_PAGE, Action.INPUT_PREVIOUS, f"{request.id} {page - 1}"))
    if page < len(starts) - 1:
        turns.append(_button(text.NEXT_PAGE, Action.INPUT_NEXT, f"{request.id} {page + 1}", style="primary"))
    if turns:
        blocks.append({"type": "actions", "elements": turns})
    return _modal(Modal.FULL_INPUT, text.FULL_INPUT_TITLE, blocks, private_metadata=request.id)


_CODE_PIECE = limits.SECTION_TEXT - 10
"""Room for a piece of the input inside its fenced section."""


@dataclass(frozen=True)
class _PageStart:
    """Where a page of *View full input* begins: in which document, before its heading or at
    which character of it (always where ``mrkdwn.split`` starts a piece)."""

    document: int
    heading: bool
    """Before the document's heading (when it has one): the page shows it first."""
    offset: int


_PAGES_KEPT = 64
"""Inputs whose page starts a worker remembers. Only the starts (a few numbers a page), never
the input nor a rendered page: inputs have no size cap, and a whole 1 MB input with its pages
took ~25 MB, times every input cached."""
_page_starts_kept: OrderedDict[bytes, tuple[_PageStart, ...]] = OrderedDict()
_page_starts_lock = threading.Lock()
"""Pages are built off the event loop (bot.slack.listeners.actions), so threads share the cache."""


def _digest(documents: tuple[tuple[str, str], ...]) -> bytes:
    digest = hashlib.sha256()
    for heading, document in documents:
        for part in (heading, document):
            data = part.encode("utf-8", "surrogatepass")  # tool input may hold lone surrogates
            digest.update(len(data).to_bytes(8, "big") + data)
    return digest.digest()


def _page_starts(documents: tuple[tuple[str, str], ...]) -> tuple[_PageStart, ...]:
    """Where each page begins, remembered by the documents' digest: turning the pages of a 2 MB
    input costs one split of it, then one page's rendering per turn."""
    key = _digest(documents)
    with _page_starts_lock:
        starts = _page_starts_kept.get(key)
        if starts is not None:
            _page_starts_kept.move_to_end(key)
            return starts
    starts = _split_pages(documents)
    with _page_starts_lock:
        _page_starts_kept[key] = starts
        while len(_page_starts_kept) > _PAGES_KEPT:
            _page_starts_kept.popitem(last=False)
    return starts


def _code_section(piece: str) -> dict[str, Any]:
    return _section(f"```\n{mrkdwn.inert_code(piece)}\n```")


def _split_pages(documents: tuple[tuple[str, str], ...]) -> tuple[_PageStart, ...]:
    """Code sections holding every character of each document, grouped into pages of at most
    ``limits.VIEW_BUDGET`` bytes (less ``_PAGE_RESERVE``) and ``limits.MODAL_BLOCKS`` blocks:
    where each page begins. Each section is rendered to be weighed, then dropped."""
    starts = [_PageStart(0, True, 0)]
    used = count = 0
    for number, (heading, document) in enumerate(documents):
        sections = [(_PageStart(number, True, 0), "", heading)] if heading else []
        offset = 0
        for piece in mrkdwn.split(document, _CODE_PIECE):
            sections.append((_PageStart(number, False, offset), piece, ""))
            offset += len(piece)
        for start, piece, heading_text in sections:
            # Slack's client sends JSON with non-ASCII escaped: measure it so.
            weight = len(json.dumps(_section(heading_text) if heading_text else _code_section(piece)))
            if count and (
                used + weight > limits.VIEW_BUDGET - _PAGE_RESERVE or count >= limits.MODAL_BLOCKS - 2
            ):
                starts.append(start)
                used = count = 0
            count += 1
            used += weight
    return tuple(starts)


def _page(
    documents: tuple[tuple[str, str], ...], starts: tuple[_PageStart, ...], page: int
) -> list[dict[str, Any]]:
    """The sections of one page: only its part of the documents is split and rendered."""
    start = starts[page]
    end = starts[page + 1] if page + 1 < len(starts) else _PageStart(len(documents), True, 0)
    out: list[dict[str, Any]] = []
    for number in range(start.document, min(end.document, len(documents) - 1) + 1):
        heading, document = documents[number]
        from_heading = number > start.document or start.heading
        if heading and from_heading and (number < end.document or not end.heading):
            out.append(_section(heading))
        first = 0 if from_heading else start.offset
        last = len(document) if number < end.document else (0 if end.heading else end.offset)
        if first < last:
            # A page begins where a piece does, so its pieces are the very ones the whole split made.
            out += [_code_section(piece) for piece in mrkdwn.split(document[first:last], _CODE_PIECE)]
    return out


def permalink(workspace_url: str, channel: str, ts: str) -> str:
    """A link to a message: the workspace's URL (``auth.test``'s ``url``), ``archives/<channel>/p<ts without its dot>``.

    That is the form ``chat.getPermalink`` answers with, built without a call per
    message (``slack.com/archives/…`` is not a documented form)."""
    return f"{workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"


_LISTED = 20
"""Requests one pending list shows (each is a section)."""


def _pending_line(
    request: ApprovalRequest, workspace_url: str | None, tool: str, summary: str, agent: str
) -> str:
    """One request of a pending list, with its parts already escaped and cut."""
    values = {
        "tool": tool,
        "summary": summary,
        "agent": text.AGENT_LINE.format(agent=agent) + " · " if agent else "",
        "epoch": int(request.created_at),
        "fallback": text.utc(request.created_at),
    }
    if request.posted and workspace_url:
        return text.PENDING_LINE.format(
            link=permalink(workspace_url, request.posted_channel, request.ts), **values
        )
    if request.posted:
        # No workspace URL to link with: name the channel, which Slack links itself.
        return text.PENDING_IN_CHANNEL.format(channel=mrkdwn.escape(request.posted_channel), **values)
    return text.PENDING_NOT_POSTED.format(**values)


_PENDING_TEXT = 10_000
"""Text the lines of a pending list share (within ``limits.MESSAGE_TEXT_BUDGET``)."""


def _pending_sections(requests: list[ApprovalRequest], workspace_url: str | None) -> list[dict[str, Any]]:
    """One section per request (up to ``_LISTED``), sharing ``_PENDING_TEXT``: 20 long tool names
    and summaries would otherwise exceed what Slack accepts in one message (msg_blocks_too_long)."""
    out = []
    shown = requests[:_LISTED]
    share = min(limits.SECTION_TEXT, _PENDING_TEXT // max(1, len(shown)))
    for request in shown:
        # The link and the date are ours and kept whole; the names and summary (untrusted) share the rest.
        room = max(
            0,
            share - mrkdwn.size(_pending_line(request, workspace_url, "", "", "-" if request.agent else "")),
        )
        agent = mrkdwn.inline(request.agent, min(100, room // 6)) if request.agent else ""
        tool = mrkdwn.inline(request.tool_name, min(150, room // 3))
        summary = mrkdwn.inline(_summary(request.proposed_input), min(200, room // 2))
        out.append(
            {
                "type": "section",
                "text": _mrkdwn(_pending_line(request, workspace_url, tool, summary, agent), share),
            }
        )
    if len(requests) > _LISTED:
        out.append(_context(text.PENDING_MORE.format(count=len(requests) - _LISTED)))
    return out


def pending_list(requests: list[ApprovalRequest], workspace_url: str | None = None) -> Message:
    """``/approvals``: what the caller can decide now, with links into ``workspace_url`` (ephemeral)."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(text.PENDING_HEADING, limits.HEADER_TEXT)}
    ]
    blocks += _pending_sections(requests, workspace_url) or [_context(text.NOTHING_PENDING)]
    fallback = text.PENDING_HEADING if requests else text.NOTHING_PENDING
    return Message(text=fallback, blocks=blocks[: limits.MESSAGE_BLOCKS])


_RECENT = 15


def home_view(
    requests: list[ApprovalRequest], recent: list[Entry], workspace_url: str | None = None
) -> dict[str, Any]:
    """The App Home tab: the caller's pending list (links into ``workspace_url``), then their recent decisions."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(text.PENDING_HEADING, limits.HEADER_TEXT)},
        _context(text.HOME_INTRO),
    ]
    blocks += _pending_sections(requests, workspace_url) or [_context(text.NOTHING_PENDING)]
    blocks += [
        {"type": "divider"},
        {"type": "header", "text": _plain(text.RECENT_HEADING, limits.HEADER_TEXT)},
    ]
    lines = [
        text.RECENT_LINE.format(
            event=text.RECENT_EVENTS.get(entry.fields.get("event", ""), entry.fields.get("event", "")),
            request=mrkdwn.escape(entry.fields.get("request", "")),
            epoch=int(entry.at),
            fallback=text.utc(entry.at),
        )
        for entry in recent[:_RECENT]
    ]
    blocks.append(_section("\n".join(lines)) if lines else _context(text.NO_RECENT))
    return {"type": "home", "blocks": blocks[: limits.MODAL_BLOCKS]}


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
        {"text": _plain(option.label, limits.OPTION_TEXT), "value": str(index)}
        for index, option in enumerate(question.options[:MENU_OPTIONS])
    ]
    return {
        "type": "static_select",
        "action_id": Action.CHOOSE_ANSWER.value,
        "placeholder": _plain(text.CHOOSE, limits.OPTION_TEXT),
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
