"""What the Claude Code gate hook (``python -m bot gate``) answers.

Two hook events reach it (``hook_events``), and it asks Slack about each call
exactly as ``SlackApprover.can_use_tool`` does (same requests, rules,
messages and audit):

- ``PermissionRequest`` fires only when Claude Code would show a permission
  prompt, so Slack sees what a person at the terminal would have been asked,
  and nothing that Claude Code allows by itself (``ls``, calls its
  ``permissions.allow`` rules cover). The live wait.
- ``PreToolUse`` fires before every matched call, and can ``defer``: the run
  ends and is resumed once the team has decided, the same request found again
  by its ``tool_use_id``. For approvals that outlive the process.

A command hook, not an in-process Python hook, because the CLI loads it from
settings when it starts: on resume, the replayed call reaches it even if the
SDK registers in-process hooks too late. How a failure still blocks the call
is ``hook_process``'s part.
"""

from __future__ import annotations

import asyncio
import pkgutil
from contextlib import suppress
from enum import StrEnum
from typing import Any

from .. import text
from ..approvals import keys
from ..approvals.model import (
    TERMINAL_ACTOR,
    ApprovalRequest,
    Decision,
    Mode,
    NewRequest,
    State,
    call_hash,
    request_id_for,
)
from ..approvals.names import AuditEvent
from ..approvals.store import RequestStore
from ..approvals.wake import DecisionWaiter
from ..redis_client import RedisClient
from . import hook_events
from .call_claims import CallClaims
from .cost import CostEstimator, estimate_cost
from .gate_config import ROUTE_WAIT, GateConfig, Host, agent_label
from .hook_events import PermissionRequestCall, PostToolUseCall, PreToolUseCall
from .other_approver import prompt_tool
from .outcome import VANISHED, Vanished, outcome_of, wait_ended
from .passthrough import PassThrough
from .paths import resolve_paths
from .permissions import granted_updates, safe_suggestions
from .transcript import calls_in_turn

BYPASS = "bypassPermissions"
"""The permission mode in which Claude Code asks nothing: there no call is left to it."""

GIVE_BACK_GRACE = 1.0
"""Seconds a stopped hook spends giving its call back (``CallClaims.give_back``)."""


class TerminalEnd(StrEnum):
    """How the person at a terminal took a request over (its audit event)."""

    ANSWERED = AuditEvent.ANSWERED_IN_TERMINAL.value
    """They answered Claude Code's own prompt first."""
    LEFT = AuditEvent.LEFT_TO_TERMINAL.value
    """Slack's wait ran out while the prompt stayed up."""

    @property
    def reason(self) -> str:
        return text.agent.TERMINAL_ANSWERED if self is TerminalEnd.ANSWERED else text.agent.TERMINAL_LEFT


class Gate:
    """Answers one hook call; all the waiting is pub/sub, as in ``SlackApprover``."""

    def __init__(
        self,
        redis: RedisClient,
        config: GateConfig,
        host: Host,
        *,
        default_timeout: float = 86400,
        team: str = "",
        wait_replicas: int = 0,
    ) -> None:
        self.redis = redis
        self.team = team
        """The workspace its requests are for (``SLACK_TEAM_ID``, OAuth mode)."""
        self.config = config
        budget = config.budget()
        self.wait = budget.wait
        self.timeout = default_timeout if config.timeout is None else config.timeout
        self.host = host
        self.store = RequestStore(redis, wait_replicas=wait_replicas)
        self.waiter = DecisionWaiter(redis, keys.DECISION_CHANNELS, self.store.ended)
        self.claims = CallClaims(redis, hold=budget.limit)
        self._passes = PassThrough.of(config.allow_rules, read_only=config.allow_read_only)
        self.stopped_by_claude_code = False
        """Set when Claude Code sent SIGTERM: in a terminal, the person answered its prompt first."""
        self._estimator: CostEstimator | None = (
            pkgutil.resolve_name(config.cost_estimator) if config.cost_estimator else None
        )

    async def answer(self, call: hook_events.Call) -> dict[str, Any]:
        if (
            isinstance(call, PreToolUseCall)
            and call.permission_mode != BYPASS
            and self._passes.lets_through(call.tool_name, call.tool_input)
        ):
            # No decision: Claude Code's own permission flow decides, exactly as without
            # the gate, and what it would prompt for still reaches can_use_tool and Slack.
            return {}
        if isinstance(call, PostToolUseCall):
            return await self._after_tool(call)
        if isinstance(call, PermissionRequestCall) and (other := prompt_tool()) is not None:
            # Both would be asked and the first answer would win: refuse, whatever the call,
            # before any Redis work (an outage must not hide why).
            return hook_events.permission_deny(text.agent.racing_approver(other))
        await self.waiter.start()
        try:
            if isinstance(call, PermissionRequestCall):
                return await self._permission_request(call)
            return await self._pre_tool_use(call)
        finally:
            await self.waiter.close()

    # -- PreToolUse ----------------------------------------------------------- #

    async def _pre_tool_use(self, call: PreToolUseCall) -> dict[str, Any]:
        request = await self._routed(await self._request(call, call.tool_use_id))
        if isinstance(request, Vanished) or request.state.is_final:
            return await self._pre_tool_use_verdict(request)

        deferrable = (
            self.host is not Host.INTERACTIVE and calls_in_turn(call.transcript_path, call.tool_use_id) == 1
        )
        deferring = deferrable and request.mode is Mode.DEFER
        if not deferring and self.wait > 0:
            outcome = await wait_ended(self.waiter, self.store, request.id, self.wait)
            if outcome is not None:
                return await self._pre_tool_use_verdict(outcome)
        if deferring or (deferrable and self.host is Host.HEADLESS):
            return hook_events.pre_tool_use("defer", text.agent.DEFER_REASON)
        if self.host is Host.SDK:
            # can_use_tool finds the same request (same tool_use_id) and waits.
            return hook_events.pre_tool_use("ask", text.agent.ASK_REASON)
        return hook_events.pre_tool_use("deny", await self._still_waiting(call, request))

    async def _pre_tool_use_verdict(self, request: ApprovalRequest | Vanished) -> dict[str, Any]:
        outcome = await outcome_of(self.store, request)
        if outcome.allowed:
            return hook_events.pre_tool_use("allow", outcome.message, outcome.updated_input)
        return hook_events.pre_tool_use("deny", outcome.message, stop=outcome.interrupt)

    # -- PermissionRequest ---------------------------------------------------- #

    async def _permission_request(self, call: PermissionRequestCall) -> dict[str, Any]:
        claim = await self.claims.claim(call)
        answered = False
        request: ApprovalRequest | None = None
        try:
            request = await self._request(
                call,
                "",
                request_id=request_id_for(f"{call.session_id}:{claim.call}"),
                suggestions=safe_suggestions(call.permission_suggestions),
            )
            claim = await self.claims.attach(claim, request.id)
            answer = await self._permission_answer(call, request)
            # Before the answer goes out: no other call takes this decision.
            # An allow of the input as asked stays marked until the call is seen running; an
            # edited one runs under another fingerprint, so nothing would ever use the mark up.
            runs_as_asked = (
                hook_events.allows(answer) and hook_events.allowed_input(answer) == call.tool_input
            )
            await self.claims.answered(claim, allowed_request=request.id if runs_as_asked else "")
            answered = True
            return answer
        except asyncio.CancelledError:
            if request is not None and self.host is Host.INTERACTIVE and self.stopped_by_claude_code:
                # Claude Code stops the hook when the person at the terminal answers its
                # prompt with No (or Esc): the request is over in Slack too.
                with suppress(Exception):
                    async with asyncio.timeout(GIVE_BACK_GRACE):
                        await self._terminal_took_over(request.id, TerminalEnd.ANSWERED)
            raise
        finally:
            if not answered:
                with suppress(Exception):
                    async with asyncio.timeout(GIVE_BACK_GRACE):
                        await self.claims.give_back(claim)

    async def _permission_answer(self, call: PermissionRequestCall, asked: ApprovalRequest) -> dict[str, Any]:
        request = await self._routed(asked)
        if not isinstance(request, Vanished) and not request.state.is_final and self.wait > 0:
            request = await wait_ended(self.waiter, self.store, request.id, self.wait) or request
        if not isinstance(request, Vanished) and not request.state.is_final and self.host is Host.INTERACTIVE:
            # Claude Code's own prompt has been up all along: leave the call to it, and say so
            # in Slack. A decision that came in meanwhile stands.
            request = await self._terminal_took_over(request.id, TerminalEnd.LEFT)
        terminal = self.host is Host.INTERACTIVE
        if terminal and isinstance(request, ApprovalRequest) and request.decided_by == TERMINAL_ACTOR:
            return {}  # the terminal answered first: its answer stands, and this one would be ignored
        if isinstance(request, Vanished) or request.state.is_final:
            outcome = await outcome_of(self.store, request)
            if outcome.allowed:
                return hook_events.permission_allow(
                    call.tool_input if outcome.updated_input is None else outcome.updated_input,
                    granted_updates(outcome.grants),
                )
            return hook_events.permission_deny(outcome.message, interrupt=outcome.interrupt)
        return hook_events.permission_deny(await self._still_waiting(call, request))

    # -- PostToolUse ---------------------------------------------------------- #

    async def _after_tool(self, call: PostToolUseCall) -> dict[str, Any]:
        """A call ran while a hook still asked Slack about it: the terminal answered first.

        Only a terminal has a prompt of its own to answer; elsewhere a call runs only on
        a hook's (or a rule's) allow."""
        if self.host is not Host.INTERACTIVE:
            return {}
        request_id = await self.claims.call_ran(
            call.session_id, call.prompt_id, call.tool_name, call.tool_input
        )
        if request_id is not None:
            await self._terminal_took_over(request_id, TerminalEnd.ANSWERED)
        return {}

    async def _terminal_took_over(self, request_id: str, end: TerminalEnd) -> ApprovalRequest | Vanished:
        """End the request in Slack (its buttons stop working); what it is now, if someone decided first."""
        decision = Decision(State.CANCELLED, actor=TERMINAL_ACTOR, reason=end.reason, event=AuditEvent(end))
        transition = await self.store.decide(request_id, decision)
        return transition.request or VANISHED

    # -- shared --------------------------------------------------------------- #

    async def _routed(self, request: ApprovalRequest) -> ApprovalRequest | Vanished:
        """The request once a worker applied the team policy (or as it is after ``ROUTE_WAIT``)."""
        if request.state.is_final or request.routed:
            return request
        return await wait_ended(self.waiter, self.store, request.id, ROUTE_WAIT, or_routed=True) or request

    async def _request(
        self,
        call: PreToolUseCall | PermissionRequestCall,
        tool_use_id: str,
        *,
        request_id: str = "",
        suggestions: list[dict[str, Any]] | None = None,
    ) -> ApprovalRequest:
        resolved = resolve_paths(call.tool_input)
        if call.session_id:
            # Picked up only by the same call: same input, and paths leading where they did.
            fingerprint = call_hash(call.tool_name, call.tool_input, resolved)
            earlier = await self.redis.getdel(keys.retry(call.session_id, call.tool_name, fingerprint))
            request = (
                await self.store.get(earlier.decode() if isinstance(earlier, bytes) else earlier)
                if earlier
                else None
            )
            if request is not None:
                return request
        config = self.config
        request, _ = await self.store.create(
            NewRequest(
                id=request_id or request_id_for(tool_use_id),
                tool_name=call.tool_name,
                tool_input=call.tool_input,
                tool_use_id=tool_use_id or None,
                agent=agent_label(config.agent_name, call.agent_id, call.agent_type),
                requested_by=config.requested_by,
                channel=config.channel,
                team=self.team,
                timeout=self.timeout,
                suggestions=suggestions or [],
                cost=await estimate_cost(self._estimator, call.tool_name, call.tool_input),
                mode=config.mode,
                resolved=resolved,
            )
        )
        return request

    async def _still_waiting(
        self, call: PreToolUseCall | PermissionRequestCall, request: ApprovalRequest
    ) -> str:
        """The deny for a call whose wait ran out: the request stays open, and the next
        identical call in this session picks it up instead of asking again (``_request``)."""
        request = await self.store.get(request.id) or request  # now posted: say where
        if call.session_id:
            await self.redis.set(
                keys.retry(call.session_id, call.tool_name, request.call_hash),
                request.id,
                ex=keys.RETENTION_SECONDS,
            )
        return text.agent.still_waiting(request)
