"""SlackApprover: the ``can_use_tool`` callback that asks a team in Slack."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Self

from claude_agent_sdk import (
    PermissionResult,
    PermissionResultAllow,
    PermissionResultDeny,
    ToolPermissionContext,
)
from redis.asyncio import Redis
from redis.exceptions import RedisError

from .. import text
from ..approvals import keys, rules
from ..approvals.model import ApprovalRequest, Decision, NewRequest, State, request_id_for
from ..approvals.store import RequestStore
from ..approvals.wake import DecisionWaiter, WaiterClosed
from ..redis_client import connect
from ..settings import Settings

log = logging.getLogger(__name__)

CANCEL_GRACE_SECONDS = 5.0
"""How long a cancelled call may spend marking its request cancelled."""


class _Vanished:
    """The request hash is gone (Redis lost it, or its retention ran out)."""


VANISHED = _Vanished()

CostEstimator = Callable[[str, dict[str, Any]], "float | None | Awaitable[float | None]"]
"""``(tool_name, tool_input) -> dollars | None``, plain or async."""


class SlackApprover:
    """Answers the Claude Agent SDK's permission callback from Slack.

    Pass ``approver.can_use_tool`` as ``ClaudeAgentOptions(can_use_tool=...)``.
    Each call is stored in Redis (once per ``tool_use_id``), posted to Slack
    by the bot workers, and waits, without polling, until someone decides.
    The agent host needs only Redis; the Slack token stays with the workers.

    It never fails open: an expiry, a Redis or Slack failure, an undeliverable
    message or a bug ends in ``PermissionResultDeny`` with a message saying
    what happened. If the SDK cancels the call, the request is marked
    cancelled (Slack says so) and the cancellation propagates.

    Use it as an async context manager, or call ``start()`` and ``close()``.
    """

    def __init__(
        self,
        redis: Redis | str,
        *,
        timeout: float = 86400,
        agent_name: str = "",
        requested_by: str = "",
        channel: str = "",
        cost_estimator: CostEstimator | None = None,
        max_connections: int = 20,
    ) -> None:
        """
        Args:
            redis: a ``redis.asyncio.Redis`` client or a ``redis://`` URL.
            timeout: seconds until an undecided request is denied as expired; 0 waits forever.
            agent_name: shown in Slack as who asks (subagent ids are appended).
            requested_by: Slack user id of the person this agent works for.
            channel: post to this channel instead of the workers' ``APPROVAL_CHANNEL``
                (a policy rule's ``channel`` still wins).
            cost_estimator: ``(tool_name, tool_input) -> dollars | None`` (may be async); the
                estimate is shown in Slack and drives the policy's cost rules and budgets.
                If it raises, the call is denied.
            max_connections: Redis connections for commands; further calls queue.
        """
        if timeout < 0:
            raise ValueError("timeout must be >= 0 (0 waits forever)")
        self._owns_redis = isinstance(redis, str)
        self.redis = connect(redis, max_connections=max_connections) if isinstance(redis, str) else redis
        self.timeout = timeout
        self.agent_name = agent_name
        self.requested_by = requested_by
        self.channel = channel
        self.cost_estimator = cost_estimator
        self.store = RequestStore(self.redis)
        self._waiter = DecisionWaiter(self.redis, keys.DECISIONS, self.store.ended)
        self._started = False
        self._start_lock = asyncio.Lock()
        self._calls = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @classmethod
    def from_env(
        cls,
        *,
        agent_name: str = "",
        requested_by: str = "",
        channel: str = "",
        **overrides: Any,
    ) -> Self:
        """Build from the environment (and ``.env``), as the workers do.

        ``overrides`` are ``Settings`` fields (``redis_url=…``,
        ``approval_timeout=…``). Only ``REDIS_URL`` is required.
        """
        settings = Settings(**overrides)
        settings.require("redis_url")
        return cls(
            settings.redis_url,
            timeout=settings.approval_timeout,
            agent_name=agent_name,
            requested_by=requested_by,
            channel=channel,
            max_connections=settings.redis_max_connections,
        )

    async def start(self) -> None:
        """Subscribe to decisions. Called for you on first use."""
        async with self._start_lock:
            if not self._started:
                await self._waiter.start()
                self._started = True

    async def close(self) -> None:
        """Deny and cancel every call still waiting, then disconnect."""
        await self._waiter.close()  # wakes each wait, which marks its request cancelled
        try:
            async with asyncio.timeout(CANCEL_GRACE_SECONDS):
                await self._idle.wait()
        except TimeoutError:
            log.warning("closing with %d approval calls still finishing", self._calls)
        self._started = False
        if self._owns_redis:
            await self.redis.aclose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def can_use_tool(
        self, tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext
    ) -> PermissionResult:
        """The SDK's permission callback: ask Slack, wait, allow or deny."""
        request_id = request_id_for(context.tool_use_id)
        self._calls += 1
        self._idle.clear()
        try:
            return await self._answer(request_id, tool_name, tool_input, context)
        finally:
            self._calls -= 1
            if not self._calls:
                self._idle.set()

    async def _answer(
        self, request_id: str, tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext
    ) -> PermissionResult:
        try:
            await self.start()
            ended = await self._ask(request_id, tool_name, tool_input, context)
            return await self._result(ended)
        except asyncio.CancelledError:
            await self._cancel(request_id)
            raise
        except WaiterClosed:
            await self._cancel(request_id)
            return PermissionResultDeny(message=text.DENY_SHUTDOWN)
        except (RedisError, OSError) as exc:
            log.exception("approval %s: Redis unavailable, denying", request_id)
            return PermissionResultDeny(message=text.deny_unreachable(exc))
        except Exception as exc:
            # The SDK would turn an exception into an error response, not a
            # deny: catch everything so the answer is always an explicit no.
            log.exception("approval %s: internal error, denying", request_id)
            return PermissionResultDeny(message=text.deny_internal_error(exc))

    async def _ask(
        self, request_id: str, tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext
    ) -> ApprovalRequest | _Vanished:
        agent = self.agent_name
        if context.agent_id:
            agent = f"{agent} (subagent {context.agent_id})" if agent else f"subagent {context.agent_id}"
        cost = await self._estimate(tool_name, tool_input)
        request, created = await self.store.create(
            NewRequest(
                id=request_id,
                tool_name=tool_name,
                tool_input=tool_input,
                tool_use_id=context.tool_use_id,
                agent=agent,
                requested_by=self.requested_by,
                channel=self.channel,
                title=context.title or "",
                timeout=self.timeout,
                suggestions=rules.safe_suggestions(context.suggestions),
                cost=cost,
            )
        )
        log.info("approval %s for %s: %s", request_id, tool_name, "queued for Slack" if created else "asked again")
        if request.state.is_final:
            return request
        remaining = max(0.0, request.deadline - time.time()) if request.deadline else None
        ended = await self._waiter.wait(request_id, lambda: self._ended(request_id), remaining)
        if ended is not None:
            return ended
        # Our own deadline passed: expire it ourselves rather than trusting a
        # worker to be running. If a decision won the race, it stands.
        transition = await self.store.decide(request_id, Decision(State.EXPIRED, reason="timeout"))
        return transition.request or VANISHED

    async def _estimate(self, tool_name: str, tool_input: dict[str, Any]) -> float | None:
        if self.cost_estimator is None:
            return None
        estimate = self.cost_estimator(tool_name, tool_input)
        if inspect.isawaitable(estimate):
            estimate = await estimate
        if estimate is None:
            return None
        if isinstance(estimate, bool) or not isinstance(estimate, (int, float)) or estimate < 0:
            raise ValueError(f"cost_estimator returned {estimate!r}; expected dollars (a number >= 0) or None")
        return float(estimate)

    async def _result(self, request: ApprovalRequest | _Vanished) -> PermissionResult:
        """What the SDK gets for a request that ended."""
        if isinstance(request, _Vanished):
            return PermissionResultDeny(message=text.DENY_VANISHED)
        if request.state in (State.APPROVED, State.ANSWERED):
            # Allow exactly what the approvers saw (or the edit they made), not
            # whatever input a repeated call with the same tool_use_id carries.
            granted = rules.to_permission_updates(request.suggestions) if request.always else None
            return PermissionResultAllow(updated_input=request.proposed_input, updated_permissions=granted)
        discussion = await self.store.discussion(request.id) if request.posted else []
        return PermissionResultDeny(message=text.deny_message(request, discussion))

    async def _ended(self, request_id: str) -> ApprovalRequest | _Vanished | None:
        request = await self.store.get(request_id)
        if request is None:
            return VANISHED
        return request if request.state.is_final else None

    async def _cancel(self, request_id: str) -> None:
        decision = Decision(State.CANCELLED, reason="the agent stopped waiting")
        try:
            async with asyncio.timeout(CANCEL_GRACE_SECONDS):
                await self.store.decide(request_id, decision)
        except Exception:
            # Whatever happens here must not replace the CancelledError (or
            # the deny) the caller is about to raise or return.
            log.warning("approval %s: could not mark cancelled", request_id, exc_info=True)

