"""The gate hook's process: read one call, print one answer, and block on any failure.

Claude Code runs the tool when a ``PreToolUse`` hook exits 1 or crashes, so
every failure there exits 2, which blocks the call and shows stderr to the
model. A ``PermissionRequest`` failure is answered with an explicit deny, so
the model reads what went wrong (in ``-p`` any failed hook denies too, but
says nothing useful). Claude Code also ignores a hook that outlives its
``timeout``, so the gate keeps a deadline below it (``deadline.py``) and
blocks when that comes, whatever it was waiting for.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Mapping
from contextlib import suppress
from typing import Any, TextIO

from pydantic import ValidationError
from redis.exceptions import RedisError

from .. import text
from ..redis_client import GATE_CLIENT_NAME, connect, timed_out
from ..settings import Settings
from . import hook_events
from .call_claims import TooManyCalls
from .deadline import WATCHDOG_DELAY, Budget, BudgetError, Watchdog, process_started
from .gate import Gate
from .gate_config import GateConfig, Host

EXIT_BLOCK = 2
"""The only failure exit code Claude Code treats as "do not run the tool" for ``PreToolUse``."""

CLOSE_GRACE = 0.5
"""Seconds the gate spends closing its Redis connections once it has its answer."""


class DeadlinePassed(Exception):
    """The gate's deadline came before its answer."""


def run(
    config: GateConfig,
    stdin: TextIO,
    stdout: TextIO,
    stderr: TextIO,
    environ: Mapping[str, str],
    *,
    started: float | None = None,
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
        raw = stdin.read()
    except (OSError, ValueError) as exc:  # stdin unreadable, or not UTF-8
        print(f"Blocked: the approval gate could not read its hook input ({exc}).", file=stderr)
        return EXIT_BLOCK
    refuse = _Refusal(hook_events.event_of(raw), stdout, stderr)
    try:
        budget = config.budget()
    except BudgetError as exc:
        return refuse(str(exc))  # refused before anything is asked
    deadline = started + budget.limit
    watchdog = Watchdog(deadline + WATCHDOG_DELAY, budget.deadline_message(), exit_code=EXIT_BLOCK).start()
    try:
        return _run(config, budget, deadline, raw, stdout, refuse, environ)
    finally:
        watchdog.stop()


class _Refusal:
    """Blocks the call in its event's shape: a deny the model reads, or exit 2 with the reason on stderr."""

    def __init__(self, event: str, stdout: TextIO, stderr: TextIO) -> None:
        self.event, self.stdout, self.stderr = event, stdout, stderr

    def __call__(self, reason: str) -> int:
        if self.event == hook_events.POST_TOOL_USE:
            # The call already ran: nothing to block, and exit 2 would show the model an error.
            print(reason, file=self.stderr)
            return 0
        if self.event == hook_events.PERMISSION_REQUEST:
            with suppress(OSError, ValueError):
                self.stdout.write(json.dumps(hook_events.permission_deny(reason)))
                self.stdout.flush()
                return 0
        print(reason, file=self.stderr)
        return EXIT_BLOCK


def _run(
    config: GateConfig,
    budget: Budget,
    deadline: float,
    raw: str,
    stdout: TextIO,
    refuse: _Refusal,
    environ: Mapping[str, str],
) -> int:
    try:
        call = hook_events.parse(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "hook_event_name"
        return refuse(f"Blocked: the approval gate got an invalid hook input ({where}: {first['msg']}).")
    try:
        settings = Settings()
        settings.require("redis_url")
        answer = asyncio.run(_answer(settings, config, call, Host.detect(environ), deadline))
        stdout.write(json.dumps(answer))
        stdout.flush()
    except DeadlinePassed:
        return refuse(budget.deadline_message())
    except asyncio.CancelledError:
        return refuse("Blocked: the approval gate was stopped before anyone decided. The tool was not run.")
    except TooManyCalls:
        return refuse(text.agent.TOO_MANY_SAME_CALLS)
    except (RedisError, OSError) as exc:
        return refuse(
            text.agent.deny_redis_silent(exc) if timed_out(exc) else text.agent.deny_unreachable(exc)
        )
    except BaseException as exc:
        return refuse(text.agent.deny_internal_error(exc))
    return 0


async def _answer(
    settings: Settings, config: GateConfig, call: hook_events.Call, host: Host, deadline: float
) -> dict[str, Any]:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    redis = connect(
        settings.redis_url or "", name=GATE_CLIENT_NAME, max_connections=4, topology=settings.redis_topology()
    )
    gate = Gate(
        redis,
        config,
        host,
        default_timeout=settings.approval_timeout,
        team=settings.slack_team_id,
        wait_replicas=settings.redis_wait_replicas,
    )

    def stopped() -> None:
        gate.stopped_by_claude_code = True
        task.cancel()

    # Claude Code stops a hook with SIGTERM (its timeout; in a terminal, an answer to its
    # own prompt, or Esc): block, never crash.
    loop.add_signal_handler(signal.SIGTERM, stopped)
    # loop.time() is a monotonic clock of its own: carry the deadline over.
    limit = asyncio.timeout_at(loop.time() + (deadline - time.monotonic()))
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
