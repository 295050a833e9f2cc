"""Clicks that decide on a request message (Approve, Always allow, a menu's answer), and team rule removal.

The clicks that open a modal are in ``modal_clicks``."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from ... import text
from ...approvals.allowlist import TeamAllowList, TeamRule
from ...approvals.grants import listed
from ...approvals.model import Decision, State, Transition
from ...approvals.policy import Policy
from ...approvals.policy_reload import PolicyHolder
from ...approvals.queue import JobQueue
from ...approvals.store import RequestStore
from ...logs import Event, tagged
from ..blocks.lists import team_rules
from ..blocks.question import menu_answer
from ..deciding import Decider
from ..identity import actor_of
from ..ids import Action
from ..payloads import ButtonClick, MenuChoice, OnMessage, RuleClick
from ..workspaces import WORKSPACE
from .commands import granted_here, workspace_rules

log = logging.getLogger(__name__)


def register(
    app: AsyncApp,
    store: RequestStore,
    decider: Decider,
    queue: JobQueue,
    allowlist: TeamAllowList,
    policy: Policy | PolicyHolder,
) -> None:
    policies = policy if isinstance(policy, PolicyHolder) else PolicyHolder.fixed(policy)
    listeners = ActionListeners(store, decider, queue, allowlist, policies)
    app.action(Action.APPROVE.value)(listeners.approve)
    app.action(Action.ALWAYS_ALLOW.value)(listeners.always_allow)
    app.action(Action.REMOVE_RULE.value)(listeners.remove_rule)
    app.action(Action.CHOOSE_ANSWER.value)(listeners.choose_answer)


class ActionListeners:
    """The listeners for clicks on request messages and in their modals, with what they use."""

    def __init__(
        self,
        store: RequestStore,
        decider: Decider,
        queue: JobQueue,
        allowlist: TeamAllowList,
        policies: PolicyHolder,
    ) -> None:
        self.store = store
        self.decider = decider
        self.queue = queue
        self.allowlist = allowlist
        self.policies = policies

    async def tell(self, click: OnMessage, transition: Transition) -> None:
        """Say why a click or a pick changed nothing (a vote shows on the message itself)."""
        if transition.refused is not None:
            await self.queue.notify(
                click.channel.id, click.user.id, text.refusals.refused(transition), team=WORKSPACE.get() or ""
            )
        elif not transition.won and transition.votes is None:
            await self.queue.notify(
                click.channel.id,
                click.user.id,
                text.refusals.already_ended(transition.request),
                team=WORKSPACE.get() or "",
            )

    async def approve_click(
        self, ack: AsyncAck, body: dict[str, Any], *, always: bool
    ) -> tuple[ButtonClick, Transition] | None:
        """Record an approval, ack, say why it changed nothing; None for a malformed click."""
        click = parse_click(body)
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
        transition = await self.decider.decide(click.request_id, decision, origin=actor_of(body))
        await ack()
        await self.tell(click, transition)
        return click, transition

    async def approve(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await self.approve_click(ack, body, always=False)

    async def always_allow(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        clicked = await self.approve_click(ack, body, always=True)
        if clicked is None:
            return
        click, transition = clicked
        if transition.won and transition.request is not None:
            # DECIDE let this person approve it alone: the rule may stand in
            # for them on later calls (the route's checks apply again there).
            # The rules the message listed (blocks.request_parts.always_allow_block), no others.
            rules_to_add = list(listed(transition.request.suggestions).rules)
            await self.allowlist.add(
                rules_to_add,
                added_by=click.user.id,
                route=transition.request.rule,
                request=click.request_id,
                team=transition.request.team,
            )

    async def remove_rule(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
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
        entry = await self.allowlist.get(click.rule_id)
        if entry is not None and not granted_here(entry):
            entry = None  # another workspace's rule (OAuth mode): not there for this one
        if entry is not None and not await self.may_remove(click.user.id, entry):
            managers = self._policy_of(entry).rule_managers(entry.route) or ()
            await respond(
                replace_original=False, text=text.refusals.rule_removal_refused(entry.route, managers)
            )
            return
        removed = (
            await self.allowlist.remove(click.rule_id, removed_by=click.user.id)
            if entry is not None
            else None
        )
        listing = team_rules(await workspace_rules(self.allowlist))
        notice = text.lists.rule_removed(removed.rule) if removed else text.lists.RULE_ALREADY_GONE
        await respond(replace_original=True, text=notice, blocks=listing.blocks)

    async def may_remove(self, user: str, entry: TeamRule) -> bool:
        """The policy's admins, the approvers of the route it was granted on, or whoever granted it."""
        if user == entry.added_by:
            return True  # taking back one's own grant only ever tightens
        managers = self._policy_of(entry).rule_managers(entry.route)
        return managers is None or await self.decider.is_one_of(user, managers)

    def _policy_of(self, entry: TeamRule) -> Policy:
        """The policy in force where the rule was granted: its workspace's own, if it has one (OAuth mode)."""
        workspaces = self.decider.workspaces
        own = workspaces.policies.get(entry.team) if workspaces is not None else None
        return (own or self.policies).current

    async def choose_answer(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
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
        # First: another workspace's person learns neither its outcome nor its options.
        elsewhere = await self.decider.other_workspace(choice.request_id, actor_of(body))
        if elsewhere is not None:
            await ack()
            await self.tell(choice, elsewhere)
            return
        request = await self.store.get(choice.request_id)
        if request is None or request.state.is_final:
            await ack()
            await self.queue.notify(
                choice.channel.id,
                choice.user.id,
                text.refusals.already_ended(request),
                team=WORKSPACE.get() or "",
            )
            return
        answered = menu_answer(request, choice.picked)
        if answered is None:
            await ack()
            await self.queue.notify(
                choice.channel.id, choice.user.id, text.refusals.NOT_AN_OPTION, team=WORKSPACE.get() or ""
            )
            return
        # Recorded before Slack gets its 200, as a click on Approve is.
        transition = await self.decider.decide(
            choice.request_id,
            Decision(
                State.ANSWERED,
                actor=choice.user.id,
                actor_name=choice.user.display,
                updated_input=answered,
                revision=choice.revision,
            ),
            origin=actor_of(body),
        )
        await ack()
        await self.tell(choice, transition)


def parse_click(body: dict[str, Any]) -> ButtonClick | None:
    """The click on a request's button, or None (logged) for a malformed payload."""
    try:
        return ButtonClick.model_validate(body)
    except ValidationError as exc:
        log.warning(
            "malformed block_actions payload ignored: %s",
            exc.errors(include_url=False, include_input=False),
            extra=tagged(Event.CLICK_MALFORMED),
        )
        return None
