"""Modal submissions."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp

from ... import text
from ...approvals.model import Decision, State
from ...approvals.store import RequestStore
from .. import blocks
from ..ids import Modal
from ..payloads import DenySubmission

log = logging.getLogger(__name__)


def register(app: AsyncApp, store: RequestStore) -> None:
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
            notice = blocks.notice_modal(text.DENY_MODAL_TITLE, text.already_ended(transition.request))
            await ack(response_action="update", view=notice)
