"""Log lines that anyone who can reach the port can cause, let through at a bounded rate.

A flood of connections makes asyncio log every failed ``accept()`` (31,000
lines in 10 s were seen): repeated lines of one kind pass at most a few times
per interval, with a count of the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

FLOOD_BURST = 5
"""Log records of one kind let through per ``FLOOD_INTERVAL``."""
FLOOD_INTERVAL = 10.0
FLOOD_KINDS = 256
"""Kinds of record tracked at once (the oldest is forgotten first)."""


class FloodFilter(logging.Filter):
    """Lets at most ``burst`` records of one kind (logger and first line of the message) through
    per ``interval`` seconds; the first one let through after a quiet spell says how many were dropped."""

    def __init__(
        self,
        burst: int = FLOOD_BURST,
        interval: float = FLOOD_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.burst, self.interval, self.clock = burst, interval, clock
        self._kinds: dict[tuple[str, str], list[float]] = {}  # kind → [window start, passed, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, str(record.msg).split("\n", 1)[0][:200])
        now = self.clock()
        window = self._kinds.get(kind)
        if window is None or now - window[0] >= self.interval:
            dropped = int(window[2]) if window else 0
            self._kinds.pop(kind, None)
            if len(self._kinds) >= FLOOD_KINDS:
                self._kinds.pop(next(iter(self._kinds)))
            self._kinds[kind] = window = [now, 0, 0]
            if dropped:
                record.msg = (
                    f"{record.msg} [{dropped} more like this in the last {self.interval:g} s not logged]"
                )
        if window[1] < self.burst:
            window[1] += 1
            return True
        window[2] += 1
        return False


_FLOOD_FILTER = FloodFilter()
FLOODING_LOGGERS = ("asyncio", "aiohttp.server", "bot.http_limits", "bot.edge")
"""asyncio logs each failed ``accept()``, aiohttp each unparsable request, this module each connection
it closes (``http_limits``), the edge each forged or malformed request: anyone who can reach the port can make them."""


def limit_log_floods() -> None:
    """Rate-limit the loggers a flood of connections writes to (once per process)."""
    for name in FLOODING_LOGGERS:
        logger = logging.getLogger(name)
        if _FLOOD_FILTER not in logger.filters:
            logger.addFilter(_FLOOD_FILTER)
