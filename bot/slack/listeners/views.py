"""Modal submissions."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp

from ... import text
from ...approvals import edits, questions
from ...approvals.model import ApprovalRequest, Decision, State
from ...approvals.store import RequestStore
from .. import blocks
from ..ids import Modal, choice_block, edit_block
from ..payloads import AnswerSubmission, DenySubmission, ModifySubmission

log = logging.getLogger(__name__)


def register(app: AsyncApp, store: RequestStore) -> None:
    @app.view(Modal.ANSWER.value)
    async def answers_submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
        try:
            submission = AnswerSubmission.model_validate(body)
        except ValidationError as exc:
            log.warning("malformed answer submission ignored: %s", exc.errors(include_url=False))
            await ack()
            return
        request = await store.get(submission.request_id)
        asked = questions.parse(request.tool_name, request.tool_input) if request else None
        if request is None or asked is None or request.state.is_final:
            await _too_late(ack, text.ANSWER_MODAL_TITLE, request)
            return
        try:
            answers = questions.answers(asked, submission.chosen, submission.typed)
        except questions.InvalidAnswers as invalid:
            errors = {choice_block(index): reason for index, reason in invalid.errors.items()}
            await ack(response_action="errors", errors=errors)
            return
        decision = Decision(
            State.ANSWERED,
            actor=submission.user.id,
            actor_name=submission.user.display,
            updated_input={**request.tool_input, "answers": answers},
        )
        transition = await store.decide(request.id, decision)
        if transition.won:
            await ack()
        else:
            await _too_late(ack, text.ANSWER_MODAL_TITLE, transition.request)

    @app.view(Modal.MODIFY.value)
    async def modify_submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
        try:
            submission = ModifySubmission.model_validate(body)
        except ValidationError as exc:
            log.warning("malformed modify submission ignored: %s", exc.errors(include_url=False))
            await ack()
            return
        request = await store.get(submission.request_id)
        if request is None or request.state.is_final:
            await _too_late(ack, text.MODIFY_MODAL_TITLE, request)
            return
        try:
            updated = edits.apply(request.tool_name, request.tool_input, submission.edited)
        except edits.InvalidEdit as invalid:
            # Shown under the field in the modal; nothing is decided until it is valid.
            errors = {edit_block(key): reason[:_ERROR_TEXT] for key, reason in invalid.errors.items()}
            await ack(response_action="errors", errors=errors)
            return
        decision = Decision(
            State.APPROVED, actor=submission.user.id, actor_name=submission.user.display, updated_input=updated
        )
        transition = await store.decide(request.id, decision)
        if transition.won:
            await ack()
        else:
            await _too_late(ack, text.MODIFY_MODAL_TITLE, transition.request)

    @app.view(Modal.DENY.value)
    async def deny_submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
        try:
            submission = DenySubmission.model_validate(body)
        except ValidationError as exc:
            log.warning("malformed deny submission ignored: %s", exc.errors(include_url=False))
            await ack()
            return
        decision = Decision(
            State.DENIED,
            actor=submission.user.id,
            actor_name=submission.user.display,
            reason=submission.reason,
        )
        transition = await store.decide(submission.request_id, decision)
        if transition.won:
            await ack()
        else:
            await _too_late(ack, text.DENY_MODAL_TITLE, transition.request)


_ERROR_TEXT = 300
"""Keep field errors short: Slack shows them under the input."""


async def _too_late(ack: AsyncAck, title: str, request: ApprovalRequest | None) -> None:
    """Replace the modal with a notice: the request ended while it was open."""
    await ack(response_action="update", view=blocks.notice_modal(title, text.already_ended(request)))
