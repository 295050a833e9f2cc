"""SlackApprover: the ``can_use_tool`` callback that asks a team in Slack."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, Self

from claude_agent_sdk import ClaudeAgentOptions, PermissionResult, PermissionResultDeny, ToolPermissionContext

from .. import metrics, text
from ..approvals import bounds, keys
from ..approvals.model import ApprovalRequest, Mode, NewRequest, request_id_for
from ..approvals.store import RequestStore
from ..approvals.tools import GATED_TOOLS
from ..approvals.wake import DecisionWaiter, WaiterClosed
from ..redis_client import AGENT_CLIENT_NAME, AGENT_CONNECTIONS, RedisClient, Topology, connect
from ..settings import Settings
from . import sdk_call, sdk_options
from .cost import CostEstimator, estimate_cost
from .gate_command import GateCommand
from .gate_config import agent_label
from .outcome import Vanished, wait_ended
from .paths import resolve_paths
from .permissions import safe_suggestions
from .sdk_call import CANCEL_GRACE_SECONDS, START_TIMEOUT
from .sdk_options import GATE_HOOK_TIMEOUT, importable_name

log = logging.getLogger(__name__)


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

    With ``mode="defer"`` a pending call ends the agent's run instead of
    pinning the process: install the gate hook (``options()`` or
    ``settings()``), then ``wait_for_decision()`` and resume the session.
    ``can_use_tool`` stays the fallback and reads the same stored decision.

    Use it as an async context manager, or call ``start()`` and ``close()``.
    """

    def __init__(
        self,
        redis: RedisClient | str,
        *,
        timeout: float = 86400,
        agent_name: str = "",
        requested_by: str = "",
        channel: str = "",
        team: str = "",
        cost_estimator: CostEstimator | None = None,
        mode: Mode | str = Mode.WAIT,
        max_connections: int = AGENT_CONNECTIONS,
        redis_topology: Topology | None = None,
    ) -> None:
        """
        Args:
            redis: a ``redis.asyncio.Redis`` client or a ``redis://`` URL.
            timeout: seconds until an undecided request is denied as expired; 0 waits forever.
            agent_name: shown in Slack as who asks (subagent ids are appended).
            requested_by: Slack user id of the person this agent works for.
            channel: post to this channel instead of the workers' ``APPROVAL_CHANNEL``
                (a policy rule's ``channel`` still wins).
            team: in OAuth mode, the workspace (``T…``) or org-wide install (``E…``) to ask in.
            cost_estimator: ``(tool_name, tool_input) -> dollars | None`` (may be async); the
                estimate is shown in Slack and drives the policy's cost rules and budgets.
                If it raises, the call is denied. In defer mode the gate hook imports it
                by name, so it must be a module-level function.
            mode: ``"wait"`` keeps the call waiting in ``can_use_tool``; ``"defer"`` ends the
                run while the request is pending (see ``settings()``). A policy rule's
                ``mode`` overrides it.
            max_connections: Redis connections, the decision subscription included (at least 2); more queue.
            redis_topology: with a URL, a cluster or Sentinels behind it (``Settings.redis_topology``);
                its ``wait_replicas`` applies to a client passed in too.
        """
        if not 0 <= timeout <= bounds.MAX_SECONDS:  # also refuses nan
            raise ValueError(f"timeout must be between 0 (waits forever) and {bounds.MAX_SECONDS:g} seconds")
        if max_connections < 2:
            raise ValueError("max_connections must be >= 2: the decision subscription holds one")
        self.mode = Mode(mode)
        self._owns_redis = isinstance(redis, str)
        self.redis_url, self.redis_topology = (redis if isinstance(redis, str) else None), redis_topology
        self.redis = (
            connect(redis, name=AGENT_CLIENT_NAME, max_connections=max_connections, topology=redis_topology)
            if isinstance(redis, str)
            else redis
        )
        self.timeout = timeout
        self.agent_name = agent_name
        self.requested_by = requested_by
        self.channel, self.team = channel, team
        self.cost_estimator = cost_estimator
        self.store = RequestStore(self.redis, wait_replicas=(redis_topology or Topology()).wait_replicas)
        self._waiter = DecisionWaiter(self.redis, keys.DECISION_CHANNELS, self.store.ended)
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
        mode: Mode | str = Mode.WAIT,
        **overrides: Any,
    ) -> Self:
        """Build from the environment (and ``.env``), as the workers do.

        ``overrides`` are ``Settings`` fields (``redis_url=…``, ``approval_timeout=…``,
        ``slack_team_id=…``). Only ``REDIS_URL`` is required.
        """
        settings = Settings(**overrides)
        return cls(
            settings.required("redis_url"),
            timeout=settings.approval_timeout,
            agent_name=agent_name,
            requested_by=requested_by,
            channel=channel,
            team=settings.slack_team_id,
            mode=mode,
            max_connections=settings.redis_max_connections or AGENT_CONNECTIONS,
            redis_topology=settings.redis_topology(),
        )

    def settings(
        self, base: dict[str, Any] | str | None = None, *, tools: str = GATED_TOOLS, allow: Iterable[str] = ()
    ) -> str:
        """The ``ClaudeAgentOptions(settings=...)`` JSON that installs the gate hook.

        The hook runs with a ``timeout`` of ``GATE_HOOK_TIMEOUT`` seconds and
        is given the same number as ``--hook-timeout``, so it always answers
        before the CLI gives up on it.

        The hook (``python -m bot gate``) asks Slack before each call of ``tools`` (a hook
        matcher) and answers from the stored decision. In defer mode it answers ``defer`` while
        the request is pending, so the run ends with ``stop_reason == "tool_deferred"``; in wait
        mode it hands the call to ``can_use_tool``, unless a policy rule says ``mode: defer``.
        The hook reads ``REDIS_URL`` (``options()`` passes it) and ``SLACK_TEAM_ID`` from its
        environment. ``base`` is your own settings (a dict, JSON or a file path), merged.

        A call Claude Code would run without asking, as ``can_use_tool`` alone never sees it,
        is left to Claude Code: one that ``allow`` (your ``allowed_tools``) or ``base``'s
        ``permissions.allow`` matches, and a simple read-only Bash command (``ls``, ``cat
        FILE``, ``git status``). The gate gives no decision for those, so if Claude Code would
        prompt after all, the call reaches ``can_use_tool`` and waits for Slack.
        """
        return sdk_options.gate_settings(base, self._gate(), tools=tools, allow=allow)

    def options(self, **kwargs: Any) -> ClaudeAgentOptions:
        """``ClaudeAgentOptions(**kwargs)`` with ``can_use_tool``, the gate hook and ``REDIS_URL`` set.

        The gate is told the run's allow rules: ``allowed_tools``, and the
        ``permissions.allow`` of ``settings`` and of the settings files
        ``setting_sources`` loads (see ``settings()``).
        """
        env = sdk_options.hook_env(self.redis_url, self.team, self.redis_topology)
        return sdk_options.gated_options(ClaudeAgentOptions(**kwargs), self.can_use_tool, self._gate(), env)

    def _gate(self) -> GateCommand:
        # --wait 0: in an SDK run can_use_tool does the waiting (or the run is deferred).
        # --allow-read-only (and --allow, the run's rules): calls can_use_tool would never see.
        return GateCommand(
            hook_timeout=GATE_HOOK_TIMEOUT,
            mode=self.mode,
            wait=0,
            agent_name=self.agent_name,
            requested_by=self.requested_by,
            channel=self.channel,
            timeout=self.timeout,
            cost_estimator=importable_name(self.cost_estimator) if self.cost_estimator is not None else "",
            allow_read_only=True,
        )

    async def wait_for_decision(self, tool_use_id: str, timeout: float | None = None) -> ApprovalRequest:
        """Wait (pub/sub, no polling) until the request for ``tool_use_id`` ends; return it.

        For defer mode: call it with ``ResultMessage.deferred_tool_use.id``,
        then resume the session (see the README). Stopping this wait changes
        nothing in Slack: the request stays pending. Raises ``LookupError``
        if there is no such request and ``TimeoutError`` after ``timeout``.
        When the id was reused with another input, this is the newest call's
        request: the one the resumed session will replay.
        """
        await self.start()
        request_id = await self.store.latest(request_id_for(tool_use_id))
        request = await wait_ended(self._waiter, self.store, request_id, timeout)
        if request is None:
            raise TimeoutError(f"no decision on {tool_use_id} within {timeout}s")
        if isinstance(request, Vanished):
            raise LookupError(f"no approval request for tool_use_id {tool_use_id!r}")
        return request

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
            # The store's batches run in tasks of their own: stop them before
            # the pool closes, or one would reconnect it (RequestStore.aclose).
            await self.store.aclose()
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
            with metrics.AGENT_WAITS.track_inprogress():
                return await self._answer(request_id, tool_name, tool_input, context)
        finally:
            self._calls -= 1
            if not self._calls:
                self._idle.set()

    async def _answer(
        self, request_id: str, tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext
    ) -> PermissionResult:
        try:
            async with asyncio.timeout(START_TIMEOUT):
                await self.start()
            request = await sdk_call.store_request(
                self.store, await self._new_request(request_id, tool_name, tool_input, context)
            )
            # Another input under a known tool_use_id has a request of its own:
            # wait for, and cancel, that one.
            request_id = request.id
            ended = (
                request
                if request.state.is_final
                else await sdk_call.wait_out(self.store, self._waiter, request)
            )
            metrics.agent_decision(ended.state.value if isinstance(ended, ApprovalRequest) else "vanished")
            return await sdk_call.permission_result(self.store, ended)
        except asyncio.CancelledError:
            await sdk_call.mark_cancelled(self.store, request_id)
            raise
        except WaiterClosed:
            await sdk_call.mark_cancelled(self.store, request_id)
            return PermissionResultDeny(message=text.agent.DENY_SHUTDOWN)
        except Exception as exc:
            # The SDK would turn an exception into an error response, not a
            # deny: catch everything so the answer is always an explicit no.
            return sdk_call.failed(request_id, exc)

    async def _new_request(
        self, request_id: str, tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext
    ) -> NewRequest:
        return NewRequest(
            id=request_id,
            tool_name=tool_name,
            tool_input=tool_input,
            tool_use_id=context.tool_use_id,
            agent=agent_label(self.agent_name, context.agent_id or ""),
            requested_by=self.requested_by,
            channel=self.channel,
            team=self.team,
            title=context.title or "",
            timeout=self.timeout,
            suggestions=safe_suggestions(s.to_dict() for s in context.suggestions),
            cost=await estimate_cost(self.cost_estimator, tool_name, tool_input),
            mode=self.mode,
            resolved=resolve_paths(tool_input),
        )
