"""One ``can_use_tool`` call's request: stored, waited out, turned into the SDK's answer, or
marked cancelled; and any failure turned into a deny that says what happened."""

from __future__ import annotations

import asyncio
import logging
import time

from claude_agent_sdk import PermissionResult, PermissionResultAllow, PermissionResultDeny, PermissionUpdate
from redis.exceptions import RedisError

from .. import text
from ..approvals.model import ApprovalRequest, Decision, NewRequest, State
from ..approvals.store import RequestStore
from ..approvals.wake import DecisionWaiter
from ..logs import Event, about, preview, tagged
from ..redis_client import CONNECT_TIMEOUT, READ_TIMEOUT, timed_out
from .cost import CostEstimateError
from .outcome import VANISHED, Vanished, outcome_of, wait_ended
from .permissions import granted_updates

log = logging.getLogger(__name__)

CANCEL_GRACE_SECONDS = 5.0
"""How long a cancelled call may spend marking its request cancelled."""

START_TIMEOUT = CONNECT_TIMEOUT + 2 * READ_TIMEOUT
"""Seconds a call waits for the decision subscription to start: one attempt
is a connection, its handshake and Redis's subscribe confirmation. Calls that
arrive while another's attempt hangs queue behind it; this bounds them each."""


async def store_request(store: RequestStore, new: NewRequest) -> ApprovalRequest:
    """The call's request: created, or the one already stored for its ``tool_use_id``."""
    request, created = await store.create(new)
    log.info(
        "approval %s for %s: %s",
        request.id,
        new.tool_name,
        "queued for Slack" if created else "asked again",
        extra=tagged(
            Event.REQUEST_CREATED if created else Event.REQUEST_REASKED,
            **about(request),
            tool=new.tool_name,
            input_preview=preview(new.tool_input),
        ),
    )
    return request


async def wait_out(
    store: RequestStore, waiter: DecisionWaiter, request: ApprovalRequest
) -> ApprovalRequest | Vanished:
    """The request once it ended, or expired by us at its deadline."""
    request_id = request.id
    remaining = max(0.0, request.deadline - time.time()) if request.deadline else None
    outcome = await wait_ended(waiter, store, request_id, remaining)
    if outcome is not None:
        return outcome
    # Our own deadline passed: expire it ourselves rather than trusting a
    # worker to be running. If a decision won the race, it stands.
    transition = await store.decide(request_id, Decision(State.EXPIRED, reason="timeout"))
    return transition.request or VANISHED


async def permission_result(store: RequestStore, request: ApprovalRequest | Vanished) -> PermissionResult:
    """What the SDK gets for a request that ended."""
    outcome = await outcome_of(store, request)
    if not outcome.allowed:
        return PermissionResultDeny(message=outcome.message, interrupt=outcome.interrupt)
    granted = (
        [PermissionUpdate.from_dict(u) for u in granted_updates(outcome.grants)] if outcome.grants else None
    )
    return PermissionResultAllow(updated_input=outcome.updated_input, updated_permissions=granted)


async def mark_cancelled(store: RequestStore, request_id: str) -> None:
    decision = Decision(State.CANCELLED, reason="the agent stopped waiting")
    try:
        async with asyncio.timeout(CANCEL_GRACE_SECONDS):
            await store.decide(request_id, decision)
    except Exception:
        # Whatever happens here must not replace the CancelledError (or
        # the deny) the caller is about to raise or return.
        log.warning("approval %s: could not mark cancelled", request_id, exc_info=True)


def failed(request_id: str, exc: Exception) -> PermissionResultDeny:
    """The deny for a call that failed with ``exc``; call it while handling ``exc`` (it logs the traceback)."""
    if isinstance(exc, CostEstimateError):
        log.warning("approval %s: %s; denying", request_id, exc)
        return PermissionResultDeny(message=text.agent.deny_bad_estimate(str(exc)))
    if isinstance(exc, (RedisError, OSError)):  # OSError includes TimeoutError
        log.exception("approval %s: Redis unavailable, denying", request_id)
        message = text.agent.deny_redis_silent(exc) if timed_out(exc) else text.agent.deny_unreachable(exc)
        return PermissionResultDeny(message=message)
    log.exception("approval %s: internal error, denying", request_id)
    return PermissionResultDeny(message=text.agent.deny_internal_error(exc))
