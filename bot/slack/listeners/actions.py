"""Button clicks on a request message."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from ... import text
from ...approvals.model import ApprovalRequest, Decision, State
from ...approvals.allowlist import TeamAllowList
from ...approvals.queue import JobQueue
from ...approvals.rules import suggested_rules
from ...approvals.store import RequestStore
from .. import blocks
from ..ids import Action
from ..payloads import ButtonClick, RuleClick

log = logging.getLogger(__name__)


def register(app: AsyncApp, store: RequestStore, queue: JobQueue, allowlist: TeamAllowList) -> None:
    @app.action(Action.APPROVE.value)
    async def approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        click = _parse(body)
        if click is None:
            await ack()
            return
        # The decision is recorded before Slack gets its 200: one Redis call,
        # and a worker that dies here fails visibly instead of losing the click.
        decision = Decision(State.APPROVED, actor=click.user.id, actor_name=click.user.display)
        transition = await store.decide(click.request_id, decision)
        await ack()
        if not transition.won:
            await queue.notify(click.channel.id, click.user.id, text.already_ended(transition.request))

    @app.action(Action.ALWAYS_ALLOW.value)
    async def always_allow(ack: AsyncAck, body: dict[str, Any]) -> None:
        click = _parse(body)
        if click is None:
            await ack()
            return
        decision = Decision(State.APPROVED, actor=click.user.id, actor_name=click.user.display, always=True)
        transition = await store.decide(click.request_id, decision)
        await ack()
        if not transition.won:
            await queue.notify(click.channel.id, click.user.id, text.already_ended(transition.request))
        elif transition.request is not None:
            rules_to_add = suggested_rules(transition.request.suggestions)
            await allowlist.add(rules_to_add, added_by=click.user.id, request=click.request_id)

    @app.action(Action.REMOVE_RULE.value)
    async def remove_rule(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        try:
            click = RuleClick.model_validate(body)
        except ValidationError as exc:
            log.warning("malformed rule removal ignored: %s", exc.errors(include_url=False))
            return
        removed = await allowlist.remove(click.rule_id, removed_by=click.user.id)
        listing = blocks.team_rules(await allowlist.all())
        notice = text.RULE_REMOVED.format(rule=removed.rule) if removed else text.RULE_ALREADY_GONE
        await respond(replace_original=True, text=notice, blocks=listing.blocks)

    @app.action(Action.DENY.value)
    async def deny(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        click = _parse(body)
        if click is None:
            await ack()
            return
        # trigger_id expires 3 s after the click: open the modal first. A
        # request that ended meanwhile is reported when the modal is submitted.
        await client.views_open(trigger_id=click.trigger_id, view=blocks.deny_modal(click.request_id))
        await ack()

    @app.action(Action.VIEW_INPUT.value)
    async def view_input(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await _open_modal(ack, body, client, text.FULL_INPUT_TITLE, blocks.full_input_modal, pending_only=False)

    @app.action(Action.MODIFY.value)
    async def modify(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await _open_modal(ack, body, client, text.MODIFY_MODAL_TITLE, blocks.modify_modal, pending_only=True)

    @app.action(Action.ANSWER.value)
    async def answer(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await _open_modal(ack, body, client, text.ANSWER_MODAL_TITLE, blocks.answer_modal, pending_only=True)

    async def _open_modal(
        ack: AsyncAck,
        body: dict[str, Any],
        client: AsyncWebClient,
        title: str,
        build: Callable[[ApprovalRequest], dict[str, Any]],
        *,
        pending_only: bool,
    ) -> None:
        """Open a modal about the clicked request.

        trigger_id expires 3 s after the click, before a Redis read is safe to
        wait for: open a placeholder at once, then fill it in.
        """
        click = _parse(body)
        if click is None:
            await ack()
            return
        opened = await client.views_open(trigger_id=click.trigger_id, view=blocks.loading_modal(title))
        await ack()
        request = await store.get(click.request_id)
        if request is None or (pending_only and request.state.is_final):
            view = blocks.notice_modal(title, text.already_ended(request))
        else:
            view = build(request)
        await client.views_update(view_id=opened["view"]["id"], view=view)


def _parse(body: dict[str, Any]) -> ButtonClick | None:
    try:
        return ButtonClick.model_validate(body)
    except ValidationError as exc:
        log.warning("malformed block_actions payload ignored: %s", exc.errors(include_url=False))
        return None
