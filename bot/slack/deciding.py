"""Recording a person's decision, with the approver rules applied."""

from __future__ import annotations

import logging
import time

from .. import metrics
from ..approvals.groups import cached_members
from ..approvals.model import Decision, Refusal, Transition, is_group
from ..approvals.queue import JobQueue
from ..approvals.store import RequestStore
from ..logs import Event, about, tagged
from .confirming import ClickConfirmer
from .directory import Directory
from .identity import Actor
from .workspaces import Workspaces

log = logging.getLogger(__name__)


class Decider:
    """``RequestStore.decide`` for clicks and forms.

    The DECIDE script checks who may decide against cached group
    membership (read by the store just before it, ``approvals.groups``); when
    a group is not cached, or the person is not in the cached copy, the group
    is looked up in Slack once and the decision tried again, so someone just
    added to a group (or a group just added by an escalation) is not turned away.

    With ``workspaces`` (OAuth mode) a person decides only requests of their own
    workspace or organisation (``Workspaces.may_decide``): ``origin`` is where
    the click or form came from, as its signed payload says (``actor_of``).
    """

    def __init__(
        self,
        store: RequestStore,
        directory: Directory,
        workspaces: Workspaces | None = None,
        queue: JobQueue | None = None,
    ) -> None:
        """``queue``: where a click lost in a Redis failover is reported to its clicker (``ClickConfirmer``)."""
        self.store = store
        self.directory = directory
        self.workspaces = workspaces
        self.confirmer = ClickConfirmer(store, queue)

    async def decide(self, request_id: str, decision: Decision, *, origin: Actor | None) -> Transition:
        started = time.monotonic()
        transition = await self.other_workspace(request_id, origin) or await self.store.decide(
            request_id, decision
        )
        groups = self._to_refresh(transition)
        if groups and await self._refreshed(transition, groups):
            transition = await self.store.decide(request_id, decision)
        metrics.click_decided(_result(transition), time.monotonic() - started)
        _log_click(request_id, decision, transition)
        await self.confirmer.confirm(request_id, decision, transition)
        return transition

    async def may_decide(
        self, request_id: str, user: str, *, approving: bool, origin: Actor | None
    ) -> Transition:
        """Whether ``user`` could decide now (nothing changes): a Transition with
        ``refused`` set if not, so the caller can say why."""
        refused = await self.other_workspace(request_id, origin)
        if refused is not None:
            return refused
        transition = await self.store.check(request_id, user, approving=approving)
        groups = self._to_refresh(transition)
        if groups and await self._refreshed(transition, groups):
            transition = await self.store.check(request_id, user, approving=approving)
        return transition

    async def is_one_of(self, user: str, targets: tuple[str, ...]) -> bool:
        """Whether ``user`` is one of ``targets`` (users, or members of user
        groups, looked up in Slack when the cache does not list them)."""
        if user in targets:
            return True
        groups = [t for t in targets if is_group(t)]
        if not groups:
            return False
        if await cached_members(self.store.redis, groups, [user]):
            return True
        return await self.directory.refresh(groups) and bool(
            await cached_members(self.store.redis, groups, [user])
        )

    async def other_workspace(self, request_id: str, origin: Actor | None) -> Transition | None:
        """A refusal when ``origin`` is not the request's workspace (OAuth mode); None to go on
        (also before what decides nothing but shows a request: its full input). A request's
        workspace never changes once created, so reading it first leaves no race."""
        if self.workspaces is None:
            return None
        request = await self.store.get(request_id)
        if request is None or await self.workspaces.may_decide(origin, request):
            return None  # gone: DECIDE says so as it does for everyone
        return Transition(won=False, request=request, refused=Refusal.OTHER_WORKSPACE)

    async def _refreshed(self, transition: Transition, groups: tuple[str, ...]) -> bool:
        """Refresh ``groups`` after a refusal; whether asking again may now end otherwise.

        An unknown group is always asked about again, even when it was cached and read
        too recently to re-read: the store reads the caches just before its script, and
        an escalation landing in between adds a group that read did not cover."""
        refreshed = await self.directory.refresh(groups)
        return refreshed or transition.refused is Refusal.UNKNOWN_GROUPS

    @staticmethod
    def _to_refresh(transition: Transition) -> tuple[str, ...]:
        if transition.refused is Refusal.UNKNOWN_GROUPS:
            return transition.groups
        if transition.refused is Refusal.NOT_APPROVER and transition.request is not None:
            return tuple(a for a in transition.request.approvers if is_group(a))
        return ()


def _result(transition: Transition) -> str:
    """A decision attempt's result, as the click histogram labels it."""
    if transition.won:
        return "won"
    if transition.votes is not None:
        return "vote"
    return "refused" if transition.refused is not None else "lost"


def _log_click(request_id: str, decision: Decision, transition: Transition) -> None:
    """One line per click or form: what it did; and, when it ended the request, a ``request.decided`` line."""
    if transition.refused is not None:
        outcome = f"refused ({transition.refused.value})"
    elif transition.votes is not None:
        outcome = f"vote {transition.votes[0]} of {transition.votes[1]}"
    elif transition.won:
        outcome = decision.state.value
    else:
        outcome = "already ended" if transition.request is not None else "no such request"
    fields = about(transition.request) if transition.request is not None else {"request_id": request_id}
    log.info(
        "request %s: %s by %s: %s",
        request_id,
        decision.state.value,
        decision.actor,
        outcome,
        extra=tagged(
            Event.CLICK, **fields, user=decision.actor, decision=decision.state.value, outcome=outcome
        ),
    )
    if transition.won and transition.request is not None and transition.request.state.is_final:
        state = transition.request.state.value
        log.info(
            "request %s %s by %s",
            request_id,
            state,
            decision.actor,
            extra=tagged(Event.REQUEST_DECIDED, **fields, user=decision.actor, state=state),
        )
