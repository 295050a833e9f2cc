"""SlackApprover: the ``can_use_tool`` callback that asks a team in Slack."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import pkgutil
import shlex
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self

from claude_agent_sdk import (
    ClaudeAgentOptions,
    PermissionResult,
    PermissionResultAllow,
    PermissionResultDeny,
    PermissionUpdate,
    ToolPermissionContext,
)
from redis.asyncio import Redis
from redis.exceptions import RedisError

from .. import metrics, text
from ..approvals import bounds, keys
from ..approvals.model import ApprovalRequest, Decision, Mode, NewRequest, State, request_id_for
from ..approvals.store import RequestStore
from ..approvals.tools import GATED_TOOLS
from ..approvals.wake import DecisionWaiter, WaiterClosed
from ..logs import Event, about, preview, tagged
from ..redis_client import (
    AGENT_CLIENT_NAME,
    AGENT_CONNECTIONS,
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    connect,
    timed_out,
)
from ..settings import Settings
from . import other_approver, passthrough
from .cost import CostEstimateError, CostEstimator, estimate_cost
from .hook_events import BLOCK_IF_NOT_STARTED
from .outcome import VANISHED, Vanished, ended, outcome_of
from .paths import resolve_paths
from .permissions import granted_updates, safe_suggestions

log = logging.getLogger(__name__)

CANCEL_GRACE_SECONDS = 5.0
"""How long a cancelled call may spend marking its request cancelled."""


GATE_HOOK_TIMEOUT = 60
"""Seconds the CLI gives the gate hook: with ``--wait 0`` it only stores the
request and lets a worker apply the policy (a few seconds at most). The gate
is told the same number (``--hook-timeout``) and answers before it: a hook
that outlives its timeout gives no decision, and the CLI's own rules decide."""

START_TIMEOUT = CONNECT_TIMEOUT + 2 * READ_TIMEOUT
"""Seconds a call waits for the decision subscription to start: one attempt
is a connection, its handshake and Redis's subscribe confirmation. Calls that
arrive while another's attempt hangs queue behind it; this bounds them each."""


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
        redis: Redis | str,
        *,
        timeout: float = 86400,
        agent_name: str = "",
        requested_by: str = "",
        channel: str = "",
        cost_estimator: CostEstimator | None = None,
        mode: Mode | str = Mode.WAIT,
        max_connections: int = AGENT_CONNECTIONS,
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
                If it raises, the call is denied. In defer mode the gate hook imports it
                by name, so it must be a module-level function.
            mode: ``"wait"`` keeps the call waiting in ``can_use_tool``; ``"defer"`` ends the
                run while the request is pending (see ``settings()``). A policy rule's
                ``mode`` overrides it.
            max_connections: Redis connections, the decision subscription included (at least 2);
                further calls queue.
        """
        if not 0 <= timeout <= bounds.MAX_SECONDS:  # also refuses nan
            raise ValueError(f"timeout must be between 0 (waits forever) and {bounds.MAX_SECONDS:g} seconds")
        if max_connections < 2:
            raise ValueError("max_connections must be >= 2: the decision subscription holds one")
        self.mode = Mode(mode)
        self._owns_redis = isinstance(redis, str)
        self.redis_url = redis if isinstance(redis, str) else None
        self.redis = (
            connect(redis, name=AGENT_CLIENT_NAME, max_connections=max_connections)
            if isinstance(redis, str)
            else redis
        )
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
        mode: Mode | str = Mode.WAIT,
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
            mode=mode,
            max_connections=settings.redis_max_connections or AGENT_CONNECTIONS,
        )

    def settings(
        self, base: dict[str, Any] | str | None = None, *, tools: str = GATED_TOOLS, allow: Iterable[str] = ()
    ) -> str:
        """The ``ClaudeAgentOptions(settings=...)`` JSON that installs the gate hook.

        The hook runs with a ``timeout`` of ``GATE_HOOK_TIMEOUT`` seconds and
        is given the same number as ``--hook-timeout``, so it always answers
        before the CLI gives up on it.

        The hook (``python -m bot gate``) asks Slack before each call of
        ``tools`` (a hook matcher) and answers from the stored decision. In
        defer mode it answers ``defer`` while the request is pending, so the
        run ends with ``stop_reason == "tool_deferred"``; in wait mode it
        hands the call to ``can_use_tool``, unless a policy rule says
        ``mode: defer``. The hook reads ``REDIS_URL`` from its environment
        (``options()`` passes it). ``base`` is your own settings (a dict, JSON
        or a file path), merged.

        A call Claude Code would run without asking, as ``can_use_tool``
        alone never sees it, is left to Claude Code: one that ``allow`` (your
        ``allowed_tools``) or ``base``'s ``permissions.allow`` matches, and a
        simple read-only Bash command (``ls``, ``cat FILE``, ``git status``).
        The gate gives no decision for those, so if Claude Code would prompt
        after all, the call reaches ``can_use_tool`` and waits for Slack.
        """
        if isinstance(base, str):
            base = json.loads(
                base if base.lstrip().startswith("{") else Path(base).read_text(encoding="utf-8")
            )
        merged = json.loads(json.dumps(base or {}))
        if other_approver.has_permission_hook(merged):
            # With can_use_tool beside it, the first answer wins: a quick allow beats the team's deny.
            raise ValueError(text.agent.racing_hook("settings"))
        hooks = merged.setdefault("hooks", {}).setdefault("PreToolUse", [])
        rules = passthrough.command_line_rules([*allow, *passthrough.allow_rules(merged)])
        hook = {
            "type": "command",
            "command": self._gate_command(GATE_HOOK_TIMEOUT, rules),
            "timeout": GATE_HOOK_TIMEOUT,
        }
        hooks.append({"matcher": tools, "hooks": [hook]})
        return json.dumps(merged)

    def options(self, **kwargs: Any) -> ClaudeAgentOptions:
        """``ClaudeAgentOptions(**kwargs)`` with ``can_use_tool``, the gate hook and ``REDIS_URL`` set.

        The gate is told the run's allow rules: ``allowed_tools``, and the
        ``permissions.allow`` of ``settings`` and of the settings files
        ``setting_sources`` loads (see ``settings()``).
        """
        options = ClaudeAgentOptions(**kwargs)
        base = options.settings
        if base and not base.lstrip().startswith("{") and options.cwd is not None:
            base = str(Path(options.cwd) / base)  # the SDK reads a settings path relative to cwd
        env = dict(options.env)
        if self.redis_url:
            env.setdefault("REDIS_URL", self.redis_url)  # via the environment: never in a command line
        files = passthrough.settings_files(options.cwd, options.setting_sources, env)
        if racing := other_approver.files_with_permission_hook(files):
            raise ValueError(text.agent.racing_hook(", ".join(map(str, racing))))
        allow = [*options.allowed_tools, *passthrough.file_rules(files)]
        return dataclasses.replace(
            options, can_use_tool=self.can_use_tool, settings=self.settings(base, allow=allow), env=env
        )

    def _gate_command(self, hook_timeout: float, allow: Iterable[str] = ()) -> str:
        # --wait 0: in an SDK run can_use_tool does the waiting (or the run is deferred).
        # --hook-timeout: the gate keeps its own deadline below the hook's timeout.
        # --allow, --allow-read-only: calls can_use_tool alone would never see are not asked.
        argv = [
            sys.executable,
            "-m",
            "bot",
            "gate",
            "--mode",
            self.mode.value,
            "--wait",
            "0",
            "--hook-timeout",
            repr(hook_timeout),
            "--timeout",
            repr(self.timeout),
            "--allow-read-only",
        ]
        for rule in allow:
            argv.append(f"--allow={rule}")  # one word: a rule is never read as an option
        for flag, value in (
            ("--agent-name", self.agent_name),
            ("--requested-by", self.requested_by),
            ("--channel", self.channel),
        ):
            if value:
                argv += [flag, value]
        if self.cost_estimator is not None:
            argv += ["--cost-estimator", _importable_name(self.cost_estimator)]
        # A gate that cannot start (exit 127) would give no decision: block instead.
        return shlex.join(argv) + BLOCK_IF_NOT_STARTED

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
        request = await self._waiter.wait(request_id, lambda: ended(self.store, request_id), timeout)
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
            request = await self._create(request_id, tool_name, tool_input, context)
            # Another input under a known tool_use_id has a request of its own:
            # wait for, and cancel, that one.
            request_id = request.id
            ended = request if request.state.is_final else await self._wait(request)
            metrics.agent_decision(ended.state.value if isinstance(ended, ApprovalRequest) else "vanished")
            return await self._result(ended)
        except asyncio.CancelledError:
            await self._cancel(request_id)
            raise
        except WaiterClosed:
            await self._cancel(request_id)
            return PermissionResultDeny(message=text.agent.DENY_SHUTDOWN)
        except CostEstimateError as exc:
            log.warning("approval %s: %s; denying", request_id, exc)
            return PermissionResultDeny(message=text.agent.deny_bad_estimate(str(exc)))
        except (RedisError, OSError) as exc:  # OSError includes TimeoutError
            log.exception("approval %s: Redis unavailable, denying", request_id)
            message = (
                text.agent.deny_redis_silent(exc) if timed_out(exc) else text.agent.deny_unreachable(exc)
            )
            return PermissionResultDeny(message=message)
        except Exception as exc:
            # The SDK would turn an exception into an error response, not a
            # deny: catch everything so the answer is always an explicit no.
            log.exception("approval %s: internal error, denying", request_id)
            return PermissionResultDeny(message=text.agent.deny_internal_error(exc))

    async def _create(
        self, request_id: str, tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext
    ) -> ApprovalRequest:
        agent = self.agent_name
        if context.agent_id:
            agent = f"{agent} (subagent {context.agent_id})" if agent else f"subagent {context.agent_id}"
        cost = await estimate_cost(self.cost_estimator, tool_name, tool_input)
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
                suggestions=safe_suggestions(s.to_dict() for s in context.suggestions),
                cost=cost,
                mode=self.mode,
                resolved=resolve_paths(tool_input),
            )
        )
        log.info(
            "approval %s for %s: %s",
            request.id,
            tool_name,
            "queued for Slack" if created else "asked again",
            extra=tagged(
                Event.REQUEST_CREATED if created else Event.REQUEST_REASKED,
                **about(request),
                tool=tool_name,
                input_preview=preview(tool_input),
            ),
        )
        return request

    async def _wait(self, request: ApprovalRequest) -> ApprovalRequest | Vanished:
        request_id = request.id
        remaining = max(0.0, request.deadline - time.time()) if request.deadline else None
        outcome = await self._waiter.wait(request_id, lambda: ended(self.store, request_id), remaining)
        if outcome is not None:
            return outcome
        # Our own deadline passed: expire it ourselves rather than trusting a
        # worker to be running. If a decision won the race, it stands.
        transition = await self.store.decide(request_id, Decision(State.EXPIRED, reason="timeout"))
        return transition.request or VANISHED

    async def _result(self, request: ApprovalRequest | Vanished) -> PermissionResult:
        """What the SDK gets for a request that ended."""
        outcome = await outcome_of(self.store, request)
        if not outcome.allowed:
            return PermissionResultDeny(message=outcome.message, interrupt=outcome.interrupt)
        granted = (
            [PermissionUpdate.from_dict(u) for u in granted_updates(outcome.grants)]
            if outcome.grants
            else None
        )
        return PermissionResultAllow(updated_input=outcome.updated_input, updated_permissions=granted)

    async def _cancel(self, request_id: str) -> None:
        decision = Decision(State.CANCELLED, reason="the agent stopped waiting")
        try:
            async with asyncio.timeout(CANCEL_GRACE_SECONDS):
                await self.store.decide(request_id, decision)
        except Exception:
            # Whatever happens here must not replace the CancelledError (or
            # the deny) the caller is about to raise or return.
            log.warning("approval %s: could not mark cancelled", request_id, exc_info=True)


def _importable_name(function: Any) -> str:
    """``module:qualname`` the gate process can import, or ValueError."""
    name = f"{getattr(function, '__module__', '')}:{getattr(function, '__qualname__', '')}"
    try:
        found = pkgutil.resolve_name(name)
    except (ImportError, AttributeError, ValueError):
        found = None
    if found is not function:
        raise ValueError(
            "the gate hook runs in its own process and imports cost_estimator by name: "
            f"make it a module-level function (got {function!r})"
        )
    return name
