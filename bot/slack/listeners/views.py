"""Modal submissions."""

from __future__ import annotations

import logging
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp

from ... import text
from ...approvals import edits, questions
from ...approvals.model import ApprovalRequest, Decision, State
from ...approvals.store import RequestStore
from ...logs import Event, tagged
from ..blocks.modals import notice_modal
from ..deciding import Decider
from ..identity import Actor, actor_of
from ..ids import Modal, choice_block, edit_block, own_answer_block
from ..payloads import AnswerSubmission, DenySubmission, ModifySubmission, Submission

log = logging.getLogger(__name__)


def register(app: AsyncApp, store: RequestStore, decider: Decider) -> None:
    listeners = ViewListeners(store, decider)
    app.view(Modal.ANSWER.value)(listeners.answers_submitted)
    app.view(Modal.MODIFY.value)(listeners.modify_submitted)
    app.view(Modal.DENY_STOP.value)(listeners.deny_submitted)
    app.view(Modal.DENY.value)(listeners.deny_submitted)
    app.view_closed(re.compile(".*"))(closed)


class ViewListeners:
    """The listeners for submitted forms, with what they read and decide through."""

    def __init__(self, store: RequestStore, decider: Decider) -> None:
        self.store = store
        self.decider = decider

    async def answers_submitted(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        submission = _parse(AnswerSubmission, body)
        if submission is None:
            await ack()
            return
        request = await self.store.get(submission.request_id)
        asked = questions.parse(request.tool_name, request.tool_input) if request else None
        if request is None or asked is None or request.state.is_final:
            await _too_late(ack, text.modals.ANSWER_MODAL_TITLE, request)
            return
        try:
            answers = questions.answers(asked, submission.chosen, submission.typed)
        except questions.InvalidAnswers as invalid:
            await _field_errors(
                ack,
                {
                    (
                        own_answer_block(index) if problem.in_typed_field else choice_block(index)
                    ): text.modals.ANSWER_PROBLEMS[problem]
                    for index, problem in invalid.errors.items()
                },
            )
            return
        updated = {**request.tool_input, "answers": answers}
        # The revision the form showed: under N-of-M, answers proposed since then make it stale.
        await _decide(
            ack,
            self.decider,
            submission,
            actor_of(body),
            State.ANSWERED,
            text.modals.ANSWER_MODAL_TITLE,
            updated_input=updated,
            revision=submission.revision,
        )

    async def modify_submitted(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        submission = _parse(ModifySubmission, body)
        if submission is None:
            await ack()
            return
        request = await self.store.get(submission.request_id)
        if request is None or request.state.is_final:
            await _too_late(ack, text.modals.MODIFY_MODAL_TITLE, request)
            return
        try:
            # On top of the latest proposal: under N-of-M an earlier edit may be awaiting votes.
            updated = edits.apply(request.tool_name, request.proposed_input, submission.edited)
        except edits.InvalidEdit as invalid:
            await _field_errors(ack, {edit_block(key): reason for key, reason in invalid.errors.items()})
            return
        await _decide(
            ack,
            self.decider,
            submission,
            actor_of(body),
            State.APPROVED,
            text.modals.MODIFY_MODAL_TITLE,
            updated_input=updated,
            revision=submission.revision,
        )

    async def deny_submitted(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """Deny, or Deny and stop: the form Slack opened for that button says which."""
        submission = _parse(DenySubmission, body)
        if submission is None:
            await ack()
            return
        stop = submission.view.callback_id == Modal.DENY_STOP.value
        title = text.modals.DENY_STOP_MODAL_TITLE if stop else text.modals.DENY_MODAL_TITLE
        await _decide(
            ack,
            self.decider,
            submission,
            actor_of(body),
            State.DENIED,
            title,
            reason=submission.reason,
            stop=stop,
        )


async def closed(ack: AsyncAck, body: dict[str, Any]) -> None:
    """Someone closed a modal: nothing is decided. Slack sends this only for a view
    opened with ``notify_on_close``, and counts any answer but a 200 as a failure."""
    await ack()
    view = body.get("view") or {}
    log.debug("modal %s closed without a decision", view.get("callback_id"))


_ERROR_TEXT = 300
"""Keep field errors short: Slack shows them under the input."""

S = TypeVar("S", bound=BaseModel)


def _parse(model: type[S], body: dict[str, Any]) -> S | None:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        log.warning(
            "malformed %s ignored: %s",
            model.__name__,
            exc.errors(include_url=False, include_input=False),
            extra=tagged(Event.CLICK_MALFORMED),
        )
        return None


async def _field_errors(ack: AsyncAck, errors: dict[str, str]) -> None:
    """Shown under each field; nothing is decided until the form is valid."""
    await ack(
        response_action="errors", errors={block: reason[:_ERROR_TEXT] for block, reason in errors.items()}
    )


async def _decide(
    ack: AsyncAck,
    decider: Decider,
    submission: Submission,
    origin: Actor | None,
    state: State,
    form_title: str,
    **decision: Any,
) -> None:
    """Record the submitter's decision; close the modal, or say why nothing changed (in a
    notice titled for what it says, not ``form_title``: a refusal is not "Modify and approve")."""
    transition = await decider.decide(
        submission.request_id,
        Decision(state, actor=submission.user.id, actor_name=submission.user.display, **decision),
        origin=origin,
    )
    if transition.won or transition.votes is not None:
        await ack()
    elif transition.refused is not None:
        await ack(
            response_action="update",
            view=notice_modal(text.refusals.NOT_ALLOWED_TITLE, text.refusals.refused(transition)),
        )
    else:
        await _too_late(ack, form_title, transition.request)


async def _too_late(ack: AsyncAck, form_title: str, request: ApprovalRequest | None) -> None:
    """Replace the form (titled ``form_title``) with a notice: the request ended while it was open."""
    await ack(
        response_action="update",
        view=notice_modal(text.refusals.ENDED_TITLE, text.refusals.already_ended(request)),
    )
