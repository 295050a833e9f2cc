"""The request message: the header, the input or questions, the buttons while pending, the outcome after."""

from __future__ import annotations

from typing import Any

from ... import text
from ...approvals import questions
from ...approvals.model import ApprovalRequest, State
from .. import limits, mrkdwn
from ..ids import Action, actions_block
from .kit import Message, button, context, mrkdwn_text, plain_text, text_size, when
from .preview import diff_sections, input_blocks, input_summary
from .question import answer_menu, given_answers, proposed_answers, question_blocks, questions_cut
from .request_parts import TARGETS_LINE, always_allow_block, cost_lines, targets_line, team_lines
from .rooms import ROOMS, Room


def request_message(request: ApprovalRequest, spent: float | None = None) -> Message:
    """The request as Slack shows it: buttons while pending, the outcome after.

    ``spent`` is what the request's route approved today (shown against its budget).
    The whole message fits ``limits.MESSAGE_TEXT_BUDGET``: long parts are cut
    shorter until it does, and *View full input* shows them whole.
    """
    for room in ROOMS:
        message = _request_message(request, spent, room)
        if text_size(message.blocks) <= limits.MESSAGE_TEXT_BUDGET:
            break
    return message


def _request_message(request: ApprovalRequest, spent: float | None, room: Room) -> Message:
    pending = request.state is State.PENDING
    asked = questions.parse(request.tool_name, request.tool_input)
    if asked is not None:
        title = text.message.QUESTION_HEADER[request.state].format(
            agent=request.agent or text.message.THE_AGENT
        )
    else:
        title = text.message.HEADER[request.state].format(tool=request.tool_name)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": plain_text(title, limits.HEADER_TEXT)}]
    if pending and request.mention:
        # Mentions come from the policy file: kept whole whatever the room (see targets_line).
        blocks.append(
            {
                "type": "section",
                "text": mrkdwn_text(targets_line(text.message.PAGING, request.mention), TARGETS_LINE),
            }
        )

    about = []
    if request.agent:
        about.append(text.message.AGENT_LINE.format(agent=mrkdwn.inline(request.agent, min(200, room.line))))
    if request.requested_by:
        about.append(text.message.REQUESTED_BY_LINE.format(user=mrkdwn.inline(request.requested_by, 100)))
    if request.title:
        about.append(mrkdwn.inline(request.title, min(500, room.line)))
    if request.rule and request.rule != "default":
        about.append(
            text.message.RULE_LINE_POLICY.format(rule=mrkdwn.inline(request.rule, min(200, room.line)))
        )
    if about:
        blocks.append(context(*about))

    if asked is not None:
        answered, proposed = given_answers(request), proposed_answers(request)
        shown_answers = answered or proposed
        body = question_blocks(asked, shown_answers, room, proposed=bool(proposed))
        truncated = questions_cut(asked, shown_answers, room)
        if proposed:
            # N-of-M: the answers awaiting agreement, and who proposed them.
            how = text.message.AGREE_BY_MENU if answer_menu(asked) is not None else text.message.AGREE_BY_FORM
            by = text.message.PROPOSED_BY.format(user=mrkdwn.inline(request.edited_by, 100), how=how)
            body.append(context(mrkdwn.cut(by, room.line)))
    else:
        # What runs (or ran) leads: after a Modify, the edited input; the original follows in the changes.
        shown = (
            request.proposed_input
            if request.modified and request.state in (State.PENDING, State.APPROVED)
            else request.tool_input
        )
        body, truncated = input_blocks(request.tool_name, shown, room.preview)
    blocks.extend(body)
    blocks.extend(cost_lines(request, spent))
    if pending:
        blocks.extend(team_lines(request))

    footer = [text.message.REQUEST_ID_LINE.format(id=request.id)]
    if pending:
        if request.on_timeout == "escalate" and request.timeout_at and not request.timeout_escalated:
            footer.append(when(text.message.ESCALATES_LINE, request.timeout_at))
        expires = request.expires_at
        footer.append(when(text.message.EXPIRES_LINE, expires) if expires else text.message.NEVER_EXPIRES)
    blocks.append(context(*footer))

    buttons: list[dict[str, Any]] = []
    if pending and asked is not None:
        # One single-select question is answered from a menu on the message itself, and
        # *Other…* is a button beside it, not an option: Slack's clients keep a menu's
        # choice and send nothing when it is picked again, so a form closed after picking
        # an "Other…" option would leave no way back but answering something else.
        menu = answer_menu(asked)
        if menu is not None:
            buttons += [menu, button(text.message.OTHER_OPTION, Action.ANSWER, request.id)]
        else:
            buttons.append(button(text.message.ANSWER, Action.ANSWER, request.id, style="primary"))
        buttons.append(button(text.message.DECLINE, Action.DENY, request.id, style="danger"))
    elif pending:
        if request.modified:
            changes, cut = diff_sections(request, room)
            blocks.extend(changes)
            truncated |= cut
        buttons.append(button(text.message.APPROVE, Action.APPROVE, request.id, style="primary"))
        granting = always_allow_block(request)
        if granting is not None:
            buttons.append(button(text.message.ALWAYS_ALLOW, Action.ALWAYS_ALLOW, request.id))
            blocks.append(granting)
        buttons += [
            button(text.message.MODIFY, Action.MODIFY, request.id),
            button(text.message.DENY, Action.DENY, request.id, style="danger"),
            button(text.message.DENY_STOP, Action.DENY_STOP, request.id),
        ]
    else:
        blocks.append(
            {
                "type": "context",
                "elements": [mrkdwn_text(text.message.outcome_line(request), max(_OUTCOME_LINE, room.line))],
            }
        )
        if request.state is State.APPROVED and request.always and (granted := always_allow_block(request)):
            blocks.append(granted)
        if request.state is State.APPROVED and request.modified:
            changes, cut = diff_sections(request, room)
            blocks.extend(changes)
            truncated |= cut
        if request.reason and request.state is State.DENIED:
            reason = text.message.REASON_PLAIN.format(reason=request.reason)
            blocks.append({"type": "section", "text": plain_text(reason, room.reason)})
    if truncated:
        buttons.append(button(text.message.VIEW_FULL_INPUT, Action.VIEW_INPUT, request.id))
    if buttons:
        blocks.append(
            {"type": "actions", "block_id": actions_block(request.id, request.revision), "elements": buttons}
        )

    notification = text.message.NOTIFICATION.format(
        tool=request.tool_name,
        summary=mrkdwn.plain(input_summary(request.tool_input), limits.NOTIFICATION_SUMMARY),
    )
    # Mentions must stay raw to notify; they come from the policy file, never from tool input.
    paging = text.notation.targets(request.mention) + " " if pending and request.mention else ""
    fallback = mrkdwn.cut(paging + mrkdwn.escape(notification), limits.MESSAGE_TEXT)
    return Message(text=fallback, blocks=blocks[: limits.MESSAGE_BLOCKS])


_OUTCOME_LINE = 600
"""The outcome line names who decided: never cut below this."""
