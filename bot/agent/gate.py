"""The PreToolUse command hook: ``python -m bot gate``.

Claude Code (and the CLI under the Agent SDK) runs it before each matching
tool call with the call as JSON on stdin, and reads the decision JSON it
prints. It asks Slack exactly as ``SlackApprover.can_use_tool`` does (same
request, keyed by ``tool_use_id``), so a call that was deferred and is
replayed on resume finds its decision at once.

A command hook, not an in-process Python hook, because the CLI loads it
from settings when it starts: on resume, the replayed call reaches it even if
the SDK registers in-process hooks too late. It must never let a call through
by accident: Claude Code runs the tool when a hook exits 1 or crashes, so
every failure here exits 2, which blocks the call and shows stderr to the model.
It also runs the tool when a hook outlives its ``timeout``, so the gate keeps
a deadline below it (``deadline.py``) and blocks when that comes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pkgutil
import signal
import sys
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from .. import text
from ..approvals import keys
from ..approvals.model import ApprovalRequest, Mode, NewRequest, call_hash, request_id_for
from ..approvals.store import RequestStore
from ..approvals.wake import DecisionWaiter
from ..redis_client import GATE_CLIENT_NAME, connect, timed_out
from ..settings import Settings
from .cost import CostEstimator, estimate_cost
from .deadline import WATCHDOG_DELAY, Budget, BudgetError, Watchdog, process_started
from .outcome import Vanished, ended, outcome_of
from .passthrough import PassThrough
from .paths import resolve_paths

log = logging.getLogger(__name__)

EXIT_BLOCK = 2
"""The only failure exit code Claude Code treats as "do not run the tool"."""

DEFAULT_WAIT = 540.0
"""Seconds the hook waits for a decision, below Claude Code's 600-second hook limit
(less when ``--hook-timeout`` says the hook's timeout is shorter)."""

ROUTE_WAIT = 5.0
"""Seconds to wait for a bot worker to apply the team policy, which may
allow, deny or pick the mode at once; a request no worker routed yet is
answered as the agent's own mode says."""

CLOSE_GRACE = 0.5
"""Seconds the gate spends closing its Redis connections once it has its answer."""


class Host(StrEnum):
    """What runs the hook, from ``CLAUDE_CODE_ENTRYPOINT``."""

    SDK = "sdk"
    """The Agent SDK: ``can_use_tool`` waits when the gate answers ``ask``."""
    HEADLESS = "headless"
    """``claude -p``: a deferred run is resumed with ``claude -p --resume``."""
    INTERACTIVE = "interactive"
    """A person at a terminal: no defer, so the gate waits, then says it is still waiting."""

    @classmethod
    def detect(cls, environ: Mapping[str, str]) -> Host:
        entrypoint = environ.get("CLAUDE_CODE_ENTRYPOINT", "")
        if entrypoint in ("sdk-py", "sdk-ts"):
            return cls.SDK
        if entrypoint == "sdk-cli":
            return cls.HEADLESS
        return cls.INTERACTIVE


class HookInput(BaseModel):
    """The part of Claude Code's PreToolUse hook input the gate reads."""

    model_config = ConfigDict(extra="ignore")

    hook_event_name: Literal["PreToolUse"]
    session_id: str = ""
    transcript_path: str = ""
    tool_name: str = Field(min_length=1)
    tool_input: dict[str, Any]
    tool_use_id: str = Field(min_length=1)


@dataclass(frozen=True)
class GateConfig:
    """The gate's command-line options (``SlackApprover.settings()`` writes them)."""

    mode: Mode = Mode.WAIT
    wait: float | None = None
    """Seconds to wait in the hook before answering defer/ask/still-waiting;
    None: ``DEFAULT_WAIT``, or less if that cannot fit below ``hook_timeout``."""
    hook_timeout: float | None = None
    """The hook's ``timeout`` in Claude Code's settings; None: Claude Code's default (600 s)."""
    timeout: float | None = None
    """Seconds until the request expires; 0 waits forever; None: ``APPROVAL_TIMEOUT``."""
    agent_name: str = ""
    requested_by: str = ""
    channel: str = ""
    cost_estimator: str = ""
    """``module:function`` of a cost estimator the hook can import."""
    allow_rules: tuple[str, ...] = ()
    """The run's own allow rules (Claude Code's string form): a call they match is left to Claude Code."""
    allow_read_only: bool = False
    """Leave simple read-only Bash commands (``ls``, ``cat FILE``, ``git status``) to Claude Code too."""

    def budget(self) -> Budget:
        """The gate's deadline and wait; ``BudgetError`` if ``wait`` cannot fit below ``hook_timeout``."""
        return Budget.plan(hook_timeout=self.hook_timeout, wait=self.wait, default_wait=DEFAULT_WAIT, route_wait=ROUTE_WAIT)


TRANSCRIPT_TAIL = 1 << 20
"""Bytes read from the end of the transcript to find the current turn."""


def calls_in_turn(transcript_path: str, tool_use_id: str) -> int:
    """How many tool calls the model made in the message holding this one (0: not found).

    Only a call made alone can be deferred: when one call of several is
    deferred, the CLI ends the turn without running or replaying the others
    (seen with CLI 2.1.329), so they would be lost. The CLI writes the
    model's message to the transcript, one entry per content block, before
    it runs the hooks.
    """
    try:
        with open(transcript_path, "rb") as transcript:
            transcript.seek(0, os.SEEK_END)
            transcript.seek(max(0, transcript.tell() - TRANSCRIPT_TAIL))
            tail = transcript.read()
    except (OSError, ValueError):
        return 0
    calls: dict[str, set[str]] = {}
    owner = None
    for line in tail.splitlines():
        if b'"tool_use"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # the first line of the tail may be cut
        message = entry.get("message") if isinstance(entry, dict) else None
        if entry.get("type") != "assistant" or not isinstance(message, dict) or not isinstance(message.get("content"), list):
            continue
        ids = {b.get("id") for b in message["content"] if isinstance(b, dict) and b.get("type") == "tool_use"}
        calls.setdefault(str(message.get("id")), set()).update(i for i in ids if isinstance(i, str))
        if tool_use_id in ids:
            owner = str(message.get("id"))
    return len(calls[owner]) if owner is not None else 0


def hook_output(decision: str, reason: str, updated_input: dict[str, Any] | None = None) -> dict[str, Any]:
    """Claude Code's PreToolUse decision JSON."""
    output: dict[str, Any] = {
        "hookEventName": "PreToolUse",
        "permissionDecision": decision,
        "permissionDecisionReason": reason,
    }
    if updated_input is not None:
        output["updatedInput"] = updated_input
    return {"hookSpecificOutput": output}


class Gate:
    """Answers one hook call; all the waiting is pub/sub, as in ``SlackApprover``."""

    def __init__(self, redis: Redis, config: GateConfig, host: Host, *, default_timeout: float = 86400) -> None:
        self.redis = redis
        self.config = config
        self.wait = config.budget().wait
        self.timeout = default_timeout if config.timeout is None else config.timeout
        self.host = host
        self.store = RequestStore(redis)
        self.waiter = DecisionWaiter(redis, keys.DECISIONS, self.store.ended)
        self._estimator: CostEstimator | None = (
            pkgutil.resolve_name(config.cost_estimator) if config.cost_estimator else None
        )

    async def answer(self, call: HookInput) -> dict[str, Any]:
        await self.waiter.start()
        try:
            return await self._answer(call)
        finally:
            await self.waiter.close()

    async def _answer(self, call: HookInput) -> dict[str, Any]:
        # passthrough (issue 16 item 6): no decision ({}), so Claude Code's own
        # permission flow decides, exactly as without the gate; what it would
        # prompt for still reaches can_use_tool and Slack (passthrough.py).
        if PassThrough.of(self.config.allow_rules, read_only=self.config.allow_read_only).lets_through(
            call.tool_name, call.tool_input
        ):
            return {}
        request: ApprovalRequest | Vanished = await self._request(call)
        if not request.state.is_final and not request.routed:
            routed = await self.waiter.wait(request.id, lambda: ended(self.store, request.id, or_routed=True), ROUTE_WAIT)
            request = routed or request
        if isinstance(request, Vanished) or request.state.is_final:
            return await self._verdict(request)

        deferrable = self.host is not Host.INTERACTIVE and calls_in_turn(call.transcript_path, call.tool_use_id) == 1
        deferring = deferrable and request.mode is Mode.DEFER
        if not deferring and self.wait > 0:
            outcome = await self.waiter.wait(request.id, lambda: ended(self.store, request.id), self.wait)
            if outcome is not None:
                return await self._verdict(outcome)
        if deferring or (deferrable and self.host is Host.HEADLESS):
            return hook_output("defer", text.DEFER_REASON)
        if self.host is Host.SDK:
            # can_use_tool finds the same request (same tool_use_id) and waits.
            return hook_output("ask", text.ASK_REASON)
        request = await self.store.get(request.id) or request  # now posted: say where
        if call.session_id:
            # The next identical call in this session picks this request up
            # instead of asking again (see _request).
            await self.redis.set(
                keys.retry(call.session_id, call.tool_name, request.call_hash), request.id, ex=keys.RETENTION_SECONDS
            )
        return hook_output("deny", text.still_waiting(request))

    async def _request(self, call: HookInput) -> ApprovalRequest:
        if self.host is Host.INTERACTIVE and call.session_id:
            # Picked up only by the same call: same input, and paths leading where they did.
            fingerprint = call_hash(call.tool_name, call.tool_input, resolve_paths(call.tool_input))
            earlier = await self.redis.getdel(keys.retry(call.session_id, call.tool_name, fingerprint))
            request = await self.store.get(earlier.decode() if isinstance(earlier, bytes) else earlier) if earlier else None
            if request is not None:
                return request
        config = self.config
        request, _ = await self.store.create(
            NewRequest(
                id=request_id_for(call.tool_use_id),
                tool_name=call.tool_name,
                tool_input=call.tool_input,
                tool_use_id=call.tool_use_id,
                agent=config.agent_name,
                requested_by=config.requested_by,
                channel=config.channel,
                timeout=self.timeout,
                cost=await estimate_cost(self._estimator, call.tool_name, call.tool_input),
                mode=config.mode,
                resolved=resolve_paths(call.tool_input),
            )
        )
        return request

    async def _verdict(self, request: ApprovalRequest | Vanished) -> dict[str, Any]:
        outcome = await outcome_of(self.store, request)
        if outcome.allowed:
            return hook_output("allow", outcome.message, outcome.updated_input)
        return hook_output("deny", outcome.message)


def run(
    config: GateConfig, stdin: TextIO, stdout: TextIO, stderr: TextIO, environ: Mapping[str, str],
    *, started: float | None = None,
) -> int:
    """Read one hook call from ``stdin``, print the decision; the exit code for Claude Code.

    Whatever happens, it returns (or the watchdog exits 2) before the
    deadline ``config.budget()`` sets, counted from ``started``
    (``time.monotonic()``; default: when this process started, as the
    hook's timeout counts). The watchdog writes to file descriptor 2:
    ``stderr`` is meant to be the process's own.
    """
    started = process_started() if started is None else started
    try:
        budget = config.budget()
    except BudgetError as exc:
        # Refused before anything is asked: exit 2 blocks the call (exit 1 would run it).
        print(exc, file=stderr)
        return EXIT_BLOCK
    deadline = started + budget.limit
    watchdog = Watchdog(deadline + WATCHDOG_DELAY, budget.deadline_message(), exit_code=EXIT_BLOCK).start()
    try:
        return _run(config, budget, deadline, stdin, stdout, stderr, environ)
    finally:
        watchdog.stop()


def _run(
    config: GateConfig, budget: Budget, deadline: float,
    stdin: TextIO, stdout: TextIO, stderr: TextIO, environ: Mapping[str, str],
) -> int:
    try:
        call = HookInput.model_validate_json(stdin.read())
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "input"
        print(f"Blocked: the approval gate got an invalid hook input ({where}: {first['msg']}).", file=stderr)
        return EXIT_BLOCK
    except (OSError, ValueError) as exc:  # stdin unreadable, or not UTF-8
        print(f"Blocked: the approval gate could not read its hook input ({exc}).", file=stderr)
        return EXIT_BLOCK
    try:
        settings = Settings()
        settings.require("redis_url")
        answer = asyncio.run(_answer(settings, config, call, Host.detect(environ), deadline))
        stdout.write(json.dumps(answer))
        stdout.flush()
    except DeadlinePassed:
        print(budget.deadline_message(), file=stderr)
        return EXIT_BLOCK
    except asyncio.CancelledError:
        print("Blocked: the approval gate was stopped before anyone decided. The tool was not run.", file=stderr)
        return EXIT_BLOCK
    except (RedisError, OSError) as exc:
        print(text.deny_redis_silent(exc) if timed_out(exc) else text.deny_unreachable(exc), file=stderr)
        return EXIT_BLOCK
    except BaseException as exc:  # noqa: BLE001 - anything else would let the tool run
        print(text.deny_internal_error(exc), file=stderr)
        return EXIT_BLOCK
    return 0


class DeadlinePassed(Exception):
    """The gate's deadline came before its answer."""


async def _answer(settings: Settings, config: GateConfig, call: HookInput, host: Host, deadline: float) -> dict[str, Any]:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    # Claude Code stops a hook with SIGTERM (timeout, Esc): block, never crash.
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    # loop.time() is a monotonic clock of its own: carry the deadline over.
    limit = asyncio.timeout_at(loop.time() + (deadline - time.monotonic()))
    redis = connect(settings.redis_url or "", name=GATE_CLIENT_NAME, max_connections=4)
    gate = Gate(redis, config, host, default_timeout=settings.approval_timeout)
    try:
        async with limit:  # connecting, storing and every wait: all of the gate's work
            return await gate.answer(call)
    except TimeoutError:
        if limit.expired():
            raise DeadlinePassed from None
        raise
    finally:
        with suppress(Exception):
            async with asyncio.timeout(CLOSE_GRACE):  # a stalled Redis must not hold up the answer
                await gate.store.aclose()  # its batches run in tasks of their own
                await redis.aclose()


def main(config: GateConfig, *, started: float | None = None) -> int:
    """The hook's process: stdin, stdout and stderr are Claude Code's pipes."""
    return run(config, sys.stdin, sys.stdout, sys.stderr, os.environ, started=started)
