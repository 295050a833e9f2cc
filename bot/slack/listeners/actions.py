"""Button clicks on a request message."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from ... import text
from ...approvals.allowlist import TeamAllowList, TeamRule
from ...approvals.grants import listed
from ...approvals.model import ApprovalRequest, Decision, State, Transition
from ...approvals.policy import Policy
from ...approvals.policy_reload import PolicyHolder
from ...approvals.queue import JobQueue
from ...approvals.store import RequestStore
from ...logs import Event, tagged
from ..blocks.full_input import full_input_modal
from ..blocks.lists import team_rules
from ..blocks.modals import (
    answer_modal,
    deny_modal,
    deny_stop_modal,
    loading_modal,
    modify_modal,
    notice_modal,
)
from ..blocks.question import menu_answer
from ..deciding import Decider
from ..errors import described, logged
from ..ids import Action
from ..payloads import ButtonClick, MenuChoice, OnMessage, RuleClick

log = logging.getLogger(__name__)

_PAGE_TURN = re.compile(r"^(?P<request>[0-9a-f]{24}) (?P<page>[0-9]{1,6})$")
"""An ``Action.INPUT_PREVIOUS``/``INPUT_NEXT`` button's value (blocks.full_input.full_input_modal)."""


def register(
    app: AsyncApp,
    store: RequestStore,
    decider: Decider,
    queue: JobQueue,
    allowlist: TeamAllowList,
    policy: Policy | PolicyHolder,
) -> None:
    policies = policy if isinstance(policy, PolicyHolder) else PolicyHolder.fixed(policy)

    async def tell(click: OnMessage, transition: Transition) -> None:
        """Say why a click or a pick changed nothing (a vote shows on the message itself)."""
        if transition.refused is not None:
            await queue.notify(click.channel.id, click.user.id, text.refusals.refused(transition))
        elif not transition.won and transition.votes is None:
            await queue.notify(
                click.channel.id, click.user.id, text.refusals.already_ended(transition.request)
            )

    async def approve_click(
        ack: AsyncAck, body: dict[str, Any], *, always: bool
    ) -> tuple[ButtonClick, Transition] | None:
        """Record an approval, ack, say why it changed nothing; None for a malformed click."""
        click = _parse(body)
        if click is None:
            await ack()
            return None
        # The decision is recorded before Slack gets its 200: one Redis call,
        # and a worker that dies here fails visibly instead of losing the click.
        decision = Decision(
            State.APPROVED,
            actor=click.user.id,
            actor_name=click.user.display,
            always=always,
            revision=click.revision,
        )
        transition = await decider.decide(click.request_id, decision)
        await ack()
        await tell(click, transition)
        return click, transition

    @app.action(Action.APPROVE.value)
    async def approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        await approve_click(ack, body, always=False)

    @app.action(Action.ALWAYS_ALLOW.value)
    async def always_allow(ack: AsyncAck, body: dict[str, Any]) -> None:
        clicked = await approve_click(ack, body, always=True)
        if clicked is None:
            return
        click, transition = clicked
        if transition.won and transition.request is not None:
            # DECIDE let this person approve it alone: the rule may stand in
            # for them on later calls (the route's checks apply again there).
            # The rules the message listed (blocks.request_parts.always_allow_block), no others.
            rules_to_add = list(listed(transition.request.suggestions).rules)
            await allowlist.add(
                rules_to_add, added_by=click.user.id, route=transition.request.rule, request=click.request_id
            )

    @app.action(Action.REMOVE_RULE.value)
    async def remove_rule(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        try:
            click = RuleClick.model_validate(body)
        except ValidationError as exc:
            log.warning(
                "malformed rule removal ignored: %s",
                exc.errors(include_url=False, include_input=False),
                extra=tagged(Event.CLICK_MALFORMED),
            )
            return
        entry = await allowlist.get(click.rule_id)
        if entry is not None and not await may_remove(click.user.id, entry):
            managers = policies.current.rule_managers(entry.route) or ()
            await respond(
                replace_original=False, text=text.refusals.rule_removal_refused(entry.route, managers)
            )
            return
        removed = (
            await allowlist.remove(click.rule_id, removed_by=click.user.id) if entry is not None else None
        )
        listing = team_rules(await allowlist.all())
        notice = text.lists.rule_removed(removed.rule) if removed else text.lists.RULE_ALREADY_GONE
        await respond(replace_original=True, text=notice, blocks=listing.blocks)

    async def may_remove(user: str, entry: TeamRule) -> bool:
        """The policy's admins, the approvers of the route it was granted on, or whoever granted it."""
        if user == entry.added_by:
            return True  # taking back one's own grant only ever tightens
        managers = policies.current.rule_managers(entry.route)
        return managers is None or await decider.is_one_of(user, managers)

    @app.action(Action.DENY.value)
    async def deny(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        # Decline on a question and Deny on a tool call share this action: the
        # button's own label says which until the request is read.
        title = (
            text.modals.DECLINE_MODAL_TITLE
            if _label(body) == text.message.DECLINE
            else text.modals.DENY_MODAL_TITLE
        )
        # Someone who may not decide is told so before typing a reason.
        shown = await _open_modal(ack, body, client, title, deny_modal, deciding="deny")
        if shown is not None:
            # While the reason is being typed, read the thread, so what people
            # said there reaches the model with the deny.
            await queue.gather(shown)

    @app.action(Action.DENY_STOP.value)
    async def deny_and_stop(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        shown = await _open_modal(
            ack, body, client, text.modals.DENY_STOP_MODAL_TITLE, deny_stop_modal, deciding="deny"
        )
        if shown is not None:
            await queue.gather(shown)

    @app.action(Action.VIEW_INPUT.value)
    async def view_input(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await _open_modal(ack, body, client, text.modals.FULL_INPUT_TITLE, full_input_modal, deciding=None)

    @app.action(Action.INPUT_PREVIOUS.value)
    @app.action(Action.INPUT_NEXT.value)
    async def input_page(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        """Previous/Next in the full-input modal: the same view shows another page (no trigger needed)."""
        await ack()
        turn = _PAGE_TURN.match(str((body.get("actions") or [{}])[0].get("value", "")))
        view_id = (body.get("view") or {}).get("id")
        if turn is None or not isinstance(view_id, str):
            log.warning("malformed page turn ignored", extra=tagged(Event.CLICK_MALFORMED))
            return
        request = await store.get(turn["request"])
        if request is None:
            view = notice_modal(text.modals.FULL_INPUT_TITLE, text.refusals.already_ended(None))
        else:
            # Off the event loop: the first look at a 2 MB input splits it (~0.4 s); other clicks must not wait.
            view = await asyncio.to_thread(full_input_modal, request, int(turn["page"]))
        await _show(client, view_id, view)

    @app.action(Action.MODIFY.value)
    async def modify(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await _open_modal(ack, body, client, text.modals.MODIFY_MODAL_TITLE, modify_modal, deciding="approve")

    @app.action(Action.ANSWER.value)
    async def answer(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await _open_modal(ack, body, client, text.modals.ANSWER_MODAL_TITLE, answer_modal, deciding="answer")

    @app.action(Action.CHOOSE_ANSWER.value)
    async def choose_answer(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        """A pick in the menu of a one-question request: the answer, recorded like a click on Approve."""
        try:
            choice = MenuChoice.model_validate(body)
        except ValidationError as exc:
            log.warning(
                "malformed menu choice ignored: %s",
                exc.errors(include_url=False, include_input=False),
                extra=tagged(Event.CLICK_MALFORMED),
            )
            await ack()
            return
        request = await store.get(choice.request_id)
        if request is None or request.state.is_final:
            await ack()
            await queue.notify(choice.channel.id, choice.user.id, text.refusals.already_ended(request))
            return
        answered = menu_answer(request, choice.picked)
        if answered is None:
            await ack()
            await queue.notify(choice.channel.id, choice.user.id, text.refusals.NOT_AN_OPTION)
            return
        # Recorded before Slack gets its 200, as a click on Approve is.
        transition = await decider.decide(
            choice.request_id,
            Decision(
                State.ANSWERED,
                actor=choice.user.id,
                actor_name=choice.user.display,
                updated_input=answered,
                revision=choice.revision,
            ),
        )
        await ack()
        await tell(choice, transition)

    async def _open_modal(
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
        click = _parse(body)
        if click is None:
            await ack()
            return None
        opened = await client.views_open(trigger_id=click.trigger_id, view=loading_modal(title))
        await ack()
        shown = None
        if deciding is None:
            request = await store.get(click.request_id)
            # Only View full input is built here: off the event loop, as a huge input takes a while to split.
            ended = notice_modal(text.refusals.ENDED_TITLE, text.refusals.already_ended(None))
            view = await asyncio.to_thread(build, request) if request is not None else ended
        else:
            check = await decider.may_decide(click.request_id, click.user.id, approving=deciding == "approve")
            request = check.request
            if request is None or request.state.is_final:
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


def _parse(body: dict[str, Any]) -> ButtonClick | None:
    try:
        return ButtonClick.model_validate(body)
    except ValidationError as exc:
        log.warning(
            "malformed block_actions payload ignored: %s",
            exc.errors(include_url=False, include_input=False),
            extra=tagged(Event.CLICK_MALFORMED),
        )
        return None
