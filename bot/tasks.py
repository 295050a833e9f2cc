"""Background tasks: loops that only cancellation ends, and stopping tasks reliably."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .logs import Event, tagged

log = logging.getLogger(__name__)

ERROR_TEXT_LIMIT = 300
"""Characters of an error kept for logs and ``/healthz`` (MISCONF's message alone is 400)."""


async def stop(tasks: Iterable[asyncio.Task[object]], *, recancel_every: float = 0.5) -> None:
    """Cancel ``tasks`` and wait until all have finished.

    A single ``cancel()`` is not enough on Python 3.11: ``asyncio.wait_for``
    (used inside libraries such as redis-py) can swallow a cancellation that
    races with the awaited result, leaving the task running. So cancel again
    until each one is done.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=recancel_every)


def describe(exc: BaseException) -> str:
    """``Type: message``, short enough for a log line or a health report."""
    message = str(exc)
    shown = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return shown if len(shown) <= ERROR_TEXT_LIMIT else shown[: ERROR_TEXT_LIMIT - 1] + "…"


@dataclass
class LoopState:
    """How one supervised loop is doing."""

    name: str
    status: str = "ok"
    """``ok``, ``failing`` (its steps raise; it retries) or ``died`` (its task ended; it is restarted)."""
    since: float | None = None
    """When it stopped working (wall clock), None while ok."""
    failures: int = 0
    """Failed steps since it stopped working."""
    error: str = ""
    """The latest failure, described."""
    restarts: int = 0
    """Times its task ended and was started again, over the supervisor's life."""
    _kind: str = ""
    _logged_at: float = 0.0

    def report(self) -> dict[str, Any]:
        return {
            "state": self.status,
            "since": self.since,
            "failures": self.failures,
            "error": self.error,
            "restarts": self.restarts,
        }


Step = Callable[[], Awaitable[object]]


class LoopSupervisor:
    """Runs named background loops that only cancellation (``close``) ends.

    A loop is a ``step`` called again and again. A step that raises (any
    ``Exception``: a Redis refusal such as READONLY, a timeout, a bug) is
    logged, and retried after an exponential backoff with jitter, capped at
    ``max_backoff``; the next step that returns marks the loop ok again. A
    task that ends anyway (a ``BaseException`` that is not our cancel) is
    logged at error, reported as died and started again. ``problems()`` says
    which loops are not ok right now, for ``/healthz``.

    Logging does not flood: the first failure of a streak is a warning (with
    its traceback unless it is one of the ``expected`` errors), a change of
    error is another, and while the same error repeats one summary line is
    written every ``summary_every`` seconds.
    """

    def __init__(
        self,
        *,
        first_backoff: float = 0.1,
        max_backoff: float = 5.0,
        summary_every: float = 60.0,
        expected: tuple[type[BaseException], ...] = (),
    ) -> None:
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self._summary_every = summary_every
        self._expected = expected
        self._states: dict[str, LoopState] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._restarts: set[asyncio.TimerHandle] = set()
        self._closing = False

    def start(self, name: str, step: Step) -> None:
        """Run ``step`` in a loop, as a task named ``name``, until ``close``."""
        self._closing = False
        self._states[name] = LoopState(name)
        self._launch(name, step)

    def problems(self) -> dict[str, dict[str, Any]]:
        """The loops that are failing or died, by name, with when, how often and why."""
        return {name: state.report() for name, state in self._states.items() if state.status != "ok"}

    async def close(self) -> None:
        """Cancel every loop and wait for them; none is restarted."""
        self._closing = True
        for handle in self._restarts:
            handle.cancel()
        self._restarts.clear()
        await stop(list(self._tasks.values()))
        self._tasks.clear()
        self._states.clear()

    # -- internals -------------------------------------------------------------

    def _launch(self, name: str, step: Step) -> None:
        if self._closing:
            return
        task = asyncio.create_task(self._run(self._states[name], step), name=name)
        self._tasks[name] = task
        task.add_done_callback(lambda ended: self._ended(name, step, ended))

    async def _run(self, state: LoopState, step: Step) -> None:
        backoff = self._first_backoff
        while not self._closing:
            try:
                await step()
            except asyncio.CancelledError as exc:
                task = asyncio.current_task()
                if self._closing or task is None or task.cancelling():
                    raise  # asked of this task: the one way a loop ends
                # Nobody cancelled this task: a library let a cancel of its own
                # work escape. Treat it as the failure it is, not as a stop.
                self._failed(state, exc, backoff)
            except Exception as exc:
                self._failed(state, exc, backoff)
            else:
                if state.status != "ok":
                    self._recovered(state)
                backoff = self._first_backoff
                # A step that finished without suspending (nothing to do, an
                # early return) must not keep the event loop to itself.
                await asyncio.sleep(0)
                continue
            # Equal jitter: workers that failed together do not retry in step.
            await asyncio.sleep(backoff / 2 + random.uniform(0, backoff / 2))
            backoff = min(backoff * 2, self._max_backoff)

    def _failed(self, state: LoopState, exc: BaseException, backoff: float) -> None:
        now = time.time()
        error = describe(exc)
        kind = f"{type(exc).__name__}:{str(exc).split(' ', 1)[0]}"
        traceback = None if isinstance(exc, self._expected) else exc
        if state.since is None:
            state.since = now
            state.failures = 0
        state.status = "failing"
        state.failures += 1
        state.error = error
        if state.failures == 1 or kind != state._kind:
            log.warning(
                "%s failing: %s; retrying in %.1fs at most",
                state.name,
                error,
                backoff,
                exc_info=traceback,
                extra=tagged(Event.LOOP_FAILING, loop=state.name, error=error),
            )
            state._logged_at = now
        elif now - state._logged_at >= self._summary_every:
            log.warning(
                "%s still failing after %d attempts over %.0fs: %s",
                state.name,
                state.failures,
                now - state.since,
                error,
                extra=tagged(Event.LOOP_FAILING, loop=state.name, error=error, failures=state.failures),
            )
            state._logged_at = now
        state._kind = kind

    def _recovered(self, state: LoopState) -> None:
        took = time.time() - (state.since or time.time())
        log.info(
            "%s recovered after %d failed attempts over %.1fs",
            state.name,
            state.failures,
            took,
            extra=tagged(Event.LOOP_RECOVERED, loop=state.name, failures=state.failures),
        )
        state.status, state.since, state.failures, state.error, state._kind = "ok", None, 0, "", ""

    def _ended(self, name: str, step: Step, task: asyncio.Task[None]) -> None:
        if self._closing or self._tasks.get(name) is not task:
            return
        state = self._states[name]
        if task.cancelled():
            why = "cancelled by something other than close()"
        else:
            exc = task.exception()
            why = describe(exc) if exc is not None else "returned"
        state.status, state.error = "died", why
        state.since = state.since or time.time()
        state.restarts += 1
        delay = self._max_backoff if state.restarts > 1 else self._first_backoff
        log.error(
            "%s ended (%s): it must only end on shutdown; restarting it in %.1fs",
            name,
            why,
            delay,
            exc_info=None if task.cancelled() else task.exception(),
        )
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def restart() -> None:
            if handle is not None:
                self._restarts.discard(handle)
            self._launch(name, step)

        handle = loop.call_later(delay, restart)
        self._restarts.add(handle)
