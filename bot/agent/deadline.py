"""The gate's time budget: it answers before its hook's timeout, whatever holds it up.

Claude Code ignores a command hook that runs past its ``timeout`` and goes on
with its normal permission flow, so a tool the user's settings allow then runs
(DESIGN.md §4, "Hook timeouts fall through"). The hook's stdin and
environment do not say what that timeout is, so the gate is told
(``--hook-timeout``, which ``SlackApprover.settings()`` writes), assumes
Claude Code's default of 600 seconds otherwise, and keeps a margin below it.

Two guards enforce the deadline: an ``asyncio`` timeout around all of the
gate's work (connecting, storing, waiting), and a ``Watchdog`` thread for a
loop that cannot get to it (a synchronous call that never returns), which
writes the reason and ends the process with exit 2.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass

from .. import text

DEFAULT_HOOK_TIMEOUT = 600.0
"""Claude Code's timeout for a command hook whose settings give none."""

MARGIN = 3.0
"""Seconds between the gate's deadline and its hook's timeout.

They hold the watchdog's second after the deadline, writing the answer and
exiting, and what Claude Code's clock ran before this process started (it
spawns a shell first; the gate counts from ``process_started``), with room to spare."""

WATCHDOG_DELAY = 1.0
"""Seconds the watchdog leaves the event loop to stop at the deadline by itself."""


def process_started() -> float:
    """``time.monotonic()`` when this process started, or now where that cannot be read.

    Python's start-up and the imports take a noticeable part of the hook's
    time (0.3 s on an idle machine, seconds on a loaded one); counting from
    the process's start keeps them inside the budget. Linux: the start time
    in ``/proc/self/stat`` is in clock ticks of ``CLOCK_BOOTTIME``.
    """
    now = time.monotonic()
    try:
        with open("/proc/self/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()  # the command name may hold spaces
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return now
    return now - age if 0 <= age <= _PLAUSIBLE_AGE else now


_PLAUSIBLE_AGE = 60.0
"""A hook process older than this at start is a misreading (another clock): count from now."""


class BudgetError(ValueError):
    """Options whose waits cannot fit below the hook's timeout; ``str()`` is what the model reads."""


@dataclass(frozen=True)
class Budget:
    """How long the gate may take, and how long of that it waits for a decision."""

    hook_timeout: float
    wait: float
    """Seconds to wait for a decision once the request is routed."""

    @property
    def limit(self) -> float:
        """Seconds from the gate's start to its deadline."""
        return self.hook_timeout - MARGIN

    @classmethod
    def plan(
        cls, *, hook_timeout: float | None, wait: float | None, default_wait: float, route_wait: float
    ) -> Budget:
        """Check the options against each other; ``BudgetError`` if they cannot fit.

        The gate's longest healthy path is the wait for a worker to route the
        request (``route_wait``), then ``wait``: both must end before the
        deadline. A ``wait`` of None is ``default_wait``, shortened to fit.
        """
        hook = DEFAULT_HOOK_TIMEOUT if hook_timeout is None else hook_timeout
        # Written so NaN fails every check: a comparison with NaN is False.
        if not math.isfinite(hook):
            raise BudgetError(text.agent.gate_bad_seconds("--hook-timeout", hook))
        room = hook - MARGIN - route_wait
        if not room >= 0:
            raise BudgetError(text.agent.gate_hook_timeout_too_short(hook, MARGIN + route_wait))
        if wait is None:
            return cls(hook, min(default_wait, room))
        if not math.isfinite(wait):
            raise BudgetError(text.agent.gate_bad_seconds("--wait", wait))
        wait = max(0.0, wait)
        if not wait <= room:
            raise BudgetError(text.agent.gate_wait_too_long(wait, hook, route_wait, MARGIN))
        return cls(hook, wait)

    def deadline_message(self) -> str:
        return text.agent.gate_deadline(self.limit, self.hook_timeout)


class Watchdog:
    """A thread that ends the process with ``exit_code`` (the gate's 2: block) if it still runs at ``at``.

    It does not depend on the event loop, so a loop stuck in a synchronous
    call cannot keep the gate past its deadline, where Claude Code would
    ignore it and let the call run. ``os._exit`` because nothing else may
    delay it: exit 2 blocks the call whatever was or was not written to stdout.
    """

    def __init__(self, at: float, message: str, *, exit_code: int, fd: int = 2) -> None:
        """``at`` is a ``time.monotonic()`` time; ``message`` goes to ``fd`` (stderr)."""
        self._at = at
        self._message = message.encode() + b"\n"
        self._exit_code = exit_code
        self._fd = fd
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="gate-watchdog", daemon=True)

    def start(self) -> Watchdog:
        self._thread.start()
        return self

    def stop(self) -> None:
        """The gate answered (or is about to exit): stand down."""
        self._done.set()

    def _watch(self) -> None:
        if self._done.wait(max(0.0, self._at - time.monotonic())):
            return
        try:
            os.write(self._fd, self._message)
        finally:
            os._exit(self._exit_code)
