"""Clicks that open a modal: Deny, Deny and stop, Modify, Answer, View full input and its pages."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from ... import text
from ...approvals.model import ApprovalRequest, Refusal
from ...approvals.queue import JobQueue
from ...approvals.store import RequestStore
from ...logs import Event, tagged
from ..blocks.full_input import full_input_modal
from ..blocks.modals import (
    answer_modal,
    deny_modal,
    deny_stop_modal,
    loading_modal,
    modify_modal,
    notice_modal,
)
from ..deciding import Decider
from ..errors import described, logged
from ..identity import actor_of
from ..ids import Action
from .actions import parse_click

log = logging.getLogger(__name__)

_PAGE_TURN = re.compile(r"^(?P<request>[0-9a-f]{24}) (?P<page>[0-9]{1,6})$")
"""An ``Action.INPUT_PREVIOUS``/``INPUT_NEXT`` button's value (blocks.full_input.full_input_modal)."""


def register(app: AsyncApp, store: RequestStore, decider: Decider, queue: JobQueue) -> None:
    listeners = ModalClicks(store, decider, queue)
    app.action(Action.DENY.value)(listeners.deny)
    app.action(Action.DENY_STOP.value)(listeners.deny_and_stop)
    app.action(Action.VIEW_INPUT.value)(listeners.view_input)
    app.action(Action.INPUT_NEXT.value)(listeners.input_page)
    app.action(Action.INPUT_PREVIOUS.value)(listeners.input_page)
    app.action(Action.MODIFY.value)(listeners.modify)
    app.action(Action.ANSWER.value)(listeners.answer)


class ModalClicks:
    """The listeners for clicks that open a modal, with what they read."""

    def __init__(self, store: RequestStore, decider: Decider, queue: JobQueue) -> None:
        self.store = store
        self.decider = decider
        self.queue = queue

    async def deny(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        # Decline on a question and Deny on a tool call share this action: the
        # button's own label says which until the request is read.
        title = (
            text.modals.DECLINE_MODAL_TITLE
            if _label(body) == text.message.DECLINE
            else text.modals.DENY_MODAL_TITLE
        )
        # Someone who may not decide is told so before typing a reason.
        shown = await self._open_modal(ack, body, client, title, deny_modal, deciding="deny")
        if shown is not None:
            # While the reason is being typed, read the thread, so what people
            # said there reaches the model with the deny.
            await self.queue.gather(shown)

    async def deny_and_stop(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        shown = await self._open_modal(
            ack, body, client, text.modals.DENY_STOP_MODAL_TITLE, deny_stop_modal, deciding="deny"
        )
        if shown is not None:
            await self.queue.gather(shown)

    async def view_input(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await self._open_modal(
            ack, body, client, text.modals.FULL_INPUT_TITLE, full_input_modal, deciding=None
        )

    async def input_page(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        """Previous/Next in the full-input modal: the same view shows another page (no trigger needed)."""
        await ack()
        turn = _PAGE_TURN.match(str((body.get("actions") or [{}])[0].get("value", "")))
        view_id = (body.get("view") or {}).get("id")
        if turn is None or not isinstance(view_id, str):
            log.warning("malformed page turn ignored", extra=tagged(Event.CLICK_MALFORMED))
            return
        request = await self.store.get(turn["request"])
        if request is None:
            view = notice_modal(text.modals.FULL_INPUT_TITLE, text.refusals.already_ended(None))
        else:
            # Off the event loop: the first look at a 2 MB input splits it (~0.4 s); other clicks must not wait.
            view = await asyncio.to_thread(full_input_modal, request, int(turn["page"]))
        await _show(client, view_id, view)

    async def modify(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await self._open_modal(
            ack, body, client, text.modals.MODIFY_MODAL_TITLE, modify_modal, deciding="approve"
        )

    async def answer(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await self._open_modal(
            ack, body, client, text.modals.ANSWER_MODAL_TITLE, answer_modal, deciding="answer"
        )

    async def _open_modal(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        client: AsyncWebClient,
        title: str,
        build: Callable[[ApprovalRequest], dict[str, Any]],
        *,
        deciding: str | None,
    ) -> str | None:
        """Open a modal about the clicked request; a form (``deciding``) only
        for a pending request the clicker may decide. Returns the request id
        when ``build``'s view is shown, None when a notice is.

        trigger_id expires 3 s after the click and is spent by its one
        views.open, before a Redis read is safe to wait for: open a
        placeholder at once, then fill it in with views.update (which needs no
        trigger). A notice has a title of its own: a refusal is not
        "Modify and approve".
        """
        click = parse_click(body)
        if click is None:
            await ack()
            return None
        opened = await client.views_open(trigger_id=click.trigger_id, view=loading_modal(title))
        await ack()
        shown = None
        if deciding is None:
            elsewhere = await self.decider.other_workspace(click.request_id, actor_of(body))
            request = await self.store.get(click.request_id)
            # Only View full input is built here: off the event loop, as a huge input takes a while to split.
            ended = notice_modal(text.refusals.ENDED_TITLE, text.refusals.already_ended(None))
            if elsewhere is not None:
                view = notice_modal(text.refusals.NOT_ALLOWED_TITLE, text.refusals.refused(elsewhere))
            else:
                view = await asyncio.to_thread(build, request) if request is not None else ended
        else:
            check = await self.decider.may_decide(
                click.request_id, click.user.id, approving=deciding == "approve", origin=actor_of(body)
            )
            request = check.request
            if check.refused is Refusal.OTHER_WORKSPACE:  # told nothing of the request, not even its outcome
                view = notice_modal(text.refusals.NOT_ALLOWED_TITLE, text.refusals.refused(check))
            elif request is None or request.state.is_final:
                view = notice_modal(text.refusals.ENDED_TITLE, text.refusals.already_ended(request))
            elif check.refused is not None:
                view = notice_modal(text.refusals.NOT_ALLOWED_TITLE, text.refusals.refused(check))
            else:
                view, shown = build(request), request.id
        await _show(client, opened["view"]["id"], view)
        return shown


async def _show(client: AsyncWebClient, view_id: str, view: dict[str, Any]) -> None:
    """Fill an open modal in. After ``ack()`` a Slack refusal (a 429 on ``views.update``,
    which every worker shares; the person closed the modal) must not turn the click's
    HTTP answer into an error: it is logged, and the person can click again."""
    try:
        await client.views_update(view_id=view_id, view=view)
    except SlackApiError as exc:
        log.warning("modal %s not updated: %s", view_id, described(exc), extra=logged(exc))


def _label(body: dict[str, Any]) -> str:
    """The clicked button's label as the payload echoes it ("" if it does not)."""
    actions = body.get("actions")
    action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
    label = action.get("text")
    return str(label.get("text") or "") if isinstance(label, dict) else ""
