"""Coalescer: the Redis calls many tasks start in one event-loop turn, sent as one batch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from ..tasks import stop

K = TypeVar("K")
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    """Turns concurrent ``get(key)`` calls into batched ``fetch(keys)`` calls.

    A Redis command costs a round trip and a few syscalls however small it
    is; when a bulk decision wakes thousands of waits at once, each reading
    its own request would cost thousands of round trips. Reads started
    before the loop's next turn are fetched together, ``max_batch`` at a time
    (one pipeline each); a lone read waits for nothing but that turn.
    ``fetch`` returns one value per key, in order; a value that is an
    exception is raised to that key's caller alone.

    A batch runs in a task of its own, not in its callers' tasks, so
    cancelling the callers does not stop it: whoever owns the client must
    ``aclose()`` this before closing the client (see ``aclose``).
    """

    def __init__(self, fetch: Callable[[list[K]], Awaitable[list[V]]], *, max_batch: int = 500) -> None:
        self._fetch = fetch
        self._max_batch = max_batch
        self._queued: list[tuple[K, asyncio.Future[V]]] = []
        self._flushing = False
        self._running: set[asyncio.Task[None]] = set()
        self._closed = False

    async def get(self, key: K) -> V:
        if self._closed:
            raise RuntimeError(
                "call after the coalescer was closed"
            )  # it would open a connection nobody closes
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V] = loop.create_future()
        self._queued.append((key, future))
        if not self._flushing:
            self._flushing = True
            loop.call_soon(self._flush)
        return await future

    async def aclose(self) -> None:
        """Cancel the reads still queued and the batches in flight, and wait for them.

        Call it before closing the Redis client. A batch left running (its
        callers were cancelled, as a stopping worker's jobs are) would send its
        commands after ``Redis.aclose()``: redis-py then reconnects the closed
        connection (or opens a new one) and nothing ever closes it again, an
        unclosed-Connection ResourceWarning when it is collected."""
        self._closed = True
        queued, self._queued = self._queued, []
        for _, future in queued:
            future.cancel()
        await stop(self._running)

    def _flush(self) -> None:
        self._flushing = False
        queued, self._queued = self._queued, []
        for start in range(0, len(queued), self._max_batch):
            task = asyncio.create_task(self._fetch_batch(queued[start : start + self._max_batch]))
            self._running.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(self._running.discard)

    async def _fetch_batch(self, batch: list[tuple[K, asyncio.Future[V]]]) -> None:
        try:
            values = await self._fetch([key for key, _ in batch])
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            for _, future in batch:
                future.cancel()  # never leave a reader waiting on a fetch that will not finish
            raise
        for (_, future), value in zip(batch, values, strict=True):
            if future.done():  # its reader was cancelled meanwhile
                continue
            if isinstance(value, Exception):
                future.set_exception(value)
            else:
                future.set_result(value)
