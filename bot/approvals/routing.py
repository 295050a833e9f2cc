"""Routing: what the policy and the team allow-list decide for a request before anyone sees it.

The first policy rule that matches gives the route: ``allow`` and ``deny``
end the request at once, without a post; ``ask`` keeps it pending for the
route's approvers. On ``ask`` the team allow-list ("Always allow") may still
approve it: a policy ``deny`` wins over the allow-list, and a team rule
approves only where its granter could have approved alone (the ROUTE script
checks each granter against the route's approvers, so the route's user
groups must be cached first: ``Routing.groups``).

Routing is recomputed on every attempt to post a request (a job may be
retried); whichever attempt stores its route first wins, and the stored
route is what every later step reads.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from ..logs import Event, about, tagged
from .allowlist import TeamAllowList
from .model import ApprovalRequest, is_group
from .policy_reload import PolicyHolder
from .policy_rule import Action, Route
from .store import RequestStore, TeamGrant

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Routing:
    """What routing decided for one request, before it is stored."""

    route: Route
    grants: tuple[TeamGrant, ...] = ()
    """The team allow-list rules that match the call, oldest first (looked up only on ``ask``)."""

    @property
    def groups(self) -> list[str]:
        """The user groups among the route's approvers. Their members are cached before
        the route is stored (ROUTE checks each granter against them) and before the
        post (the first click checks membership against the same cache)."""
        return [a for a in self.route.approvers if is_group(a)]


class Router:
    """Routes requests by the policy in force and the team allow-list."""

    def __init__(
        self,
        store: RequestStore,
        policies: PolicyHolder,
        allowlist: TeamAllowList,
        by_team: Mapping[str, PolicyHolder] | None = None,
    ) -> None:
        """``by_team``: the policies of workspaces that have their own (OAuth mode), by workspace id."""
        self.store = store
        # The holder, read at each routing: a reloaded policy applies to the next request.
        self.policies = policies
        self.allowlist = allowlist
        self.by_team = by_team or {}

    async def decide(self, request: ApprovalRequest) -> Routing:
        """The request's route under the policy in force and, on ``ask``, the team
        rules that match its call (a policy ``allow`` or ``deny`` needs none)."""
        route = self.by_team.get(request.team, self.policies).current.route(
            request.tool_name, request.tool_input, request.cost, resolved=request.resolved
        )
        if route.action is not Action.ASK:
            return Routing(route)
        grants = await self.allowlist.grants(
            request.tool_name, request.tool_input, request.resolved, team=request.team
        )
        return Routing(route, tuple(grants))

    async def apply(self, request: ApprovalRequest, routing: Routing) -> ApprovalRequest | None:
        """Store ``routing`` in one atomic step that also applies it (``RequestStore.route``):
        an allow, a deny or a matching team rule ends the request; an ask leaves it pending
        on its route. A request routed already keeps its route. Returns the request as it
        stands then (None once it no longer exists)."""
        route = routing.route
        state = await self.store.route(request.id, route, routing.grants)
        log.info(
            "request %s routed by %s: %s",
            request.id,
            route.rule,
            state.value if state is not None else "gone",
            extra=tagged(
                Event.REQUEST_ROUTED,
                **{**about(request), "rule": route.rule},
                action=route.action.value,
                state=state.value if state is not None else None,
            ),
        )
        return await self.store.get(request.id)
