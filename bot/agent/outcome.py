"""Whether a call's request ended, and what the call is told then: shared by
``can_use_tool`` and the gate hook."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .. import text
from ..approvals.grants import listed
from ..approvals.groups import cached_members
from ..approvals.model import ApprovalRequest, State, is_group
from ..approvals.store import RequestStore
from ..approvals.wake import DecisionWaiter


class Vanished:
    """The request hash is gone (Redis lost it, or its retention ran out)."""


VANISHED = Vanished()


async def wait_ended(
    waiter: DecisionWaiter,
    store: RequestStore,
    request_id: str,
    timeout: float | None,
    *,
    or_routed: bool = False,
) -> ApprovalRequest | Vanished | None:
    """The request once it ended (or, with ``or_routed``, once the policy routed it); None after ``timeout``.

    Woken by ``waiter``, without polling; a vanished request ends the wait too.
    """

    async def ended() -> ApprovalRequest | Vanished | None:
        request = await store.get(request_id)
        if request is None:
            return VANISHED
        if request.state in ALLOWING:
            # Acted on only as the replicas hold it. Not there yet: keep waiting. A failover that
            # lost it shows the request pending again, and the clicker's retried decision wakes this.
            request = await _replicated(store, request)
            if request is None:
                return None
        if request.state.is_final or (or_routed and request.routed):
            return request
        return None

    return await waiter.wait(request_id, ended, timeout)


ALLOWING = frozenset({State.APPROVED, State.ANSWERED})
"""The final states the tool runs on."""
CONFIRM_ATTEMPTS = 5
CONFIRM_PAUSE = 0.5
"""An allowing state unconfirmed by the replicas (``approvals.replication``) is tried this many
times, this many seconds apart, before the wait goes on: a failover settles in seconds."""


async def _replicated(store: RequestStore, request: ApprovalRequest) -> ApprovalRequest | None:
    """``request`` as the replicas hold it, once that is a final state; None while they do not
    confirm it, or at once when what they hold is pending (a failover lost the decision)."""
    if not store.replication.replicas:
        return request
    for attempt in range(CONFIRM_ATTEMPTS):
        if attempt:
            await asyncio.sleep(CONFIRM_PAUSE)
        held = await store.replication.confirmed(request.id)
        if held is not None:
            return held if held.state.is_final else None
    return None


@dataclass(frozen=True)
class Outcome:
    allowed: bool
    message: str
    """The deny message for the model, or why the call is allowed."""
    updated_input: dict[str, Any] | None = None
    """For an allow: exactly what the approvers saw (or their edit)."""
    grants: list[dict[str, Any]] = field(default_factory=list)
    """Permission updates approved with "Always allow": exactly those its message listed."""
    interrupt: bool = False
    """A deny that ends the agent's run too ("Deny and stop")."""


async def outcome_of(store: RequestStore, request: ApprovalRequest | Vanished) -> Outcome:
    """The answer for a request that ended (or vanished)."""
    if isinstance(request, Vanished):
        return Outcome(False, text.decision.DENY_VANISHED)
    if request.state in ALLOWING and store.replication.replicas:
        # The last gate before the tool runs (resumed deferred calls, a decision that beat the
        # agent's own expiry): the answer is built from the request as the replicas hold it,
        # never from a read a failover could still take back.
        held = await store.replication.confirmed(request.id)
        if held is None or not held.state.is_final:
            return Outcome(False, text.decision.DENY_UNCONFIRMED)
        request = held  # another final state than the one read (a denial) is answered as such
    if request.state in ALLOWING:
        # Allow what the approvers saw (or the edit they made), not whatever
        # input a repeated call with the same tool_use_id carries; grant what
        # the message listed, read from the suggestions the same way.
        grants = listed(request.suggestions).stored() if request.always else []
        return Outcome(True, text.decision.allow_reason(request), request.proposed_input, grants)
    discussion = await store.discussion(request.id) if request.posted else []
    approvers = await may_approve(store, request, {r.user for r in discussion})
    stop = request.state is State.DENIED and request.stop
    return Outcome(False, text.decision.deny_message(request, discussion, approvers), interrupt=stop)


async def may_approve(store: RequestStore, request: ApprovalRequest, users: set[str]) -> frozenset[str]:
    """Which of ``users`` the team's rules let approve ``request``: the model is told who is who.

    Listed users, and members of listed groups (escalation steps that fired
    included) as cached in Redis now; a group no longer cached counts as no. With nobody listed, anyone in the channel may. The person
    the agent acts for may not, unless the rule allows self-approval.
    """
    if not request.allow_self:
        users = users - {request.requested_by}
    if not users or not request.approvers:
        return frozenset(users)
    listed_users = users & set(request.approvers)
    groups = [g for g in request.approvers if is_group(g)]
    others = sorted(users - listed_users)
    if not groups or not others:
        return frozenset(listed_users)
    return frozenset(listed_users | await cached_members(store.redis, groups, others))
