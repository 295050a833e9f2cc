"""Stopping background tasks reliably."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


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
