"""DecisionWaiter: many waits on decisions over one pub/sub subscription (a connection per primary)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.exceptions import RedisError

from .. import metrics
from ..redis_client import RedisClient
from ..tasks import stop
from .shard_subscription import ShardSubscription

log = logging.getLogger(__name__)

T = TypeVar("T")

_DRAIN = 1000
"""Messages read without waiting after one, before a re-check a confirmation among them asks for."""


class WaiterClosed(Exception):
    """The waiter was closed while a wait was in progress."""


EndedProbe = Callable[[list[str]], Awaitable[set[str]]]
"""Given request ids, returns those that are no longer pending."""


class DecisionWaiter:
    """Wakes waiting calls when their request is decided, without polling.

    One subscription to every shard's decisions channel carries every wait of
    the process (one connection, or one per cluster node owning shards); a wait
    is an ``asyncio.Event`` in a dict, not a task or a connection. The channels
    are subscribed before any wait starts, and every wait registers itself before
    reading the stored state, so a decision that lands before or during the
    wait is never missed. After a reconnect (or every ``recheck_interval`` as
    a second line of defence) the pending ids are checked in one pipeline and
    the ended ones woken, since messages published while the connection was
    down (or a failover moved a channel) are lost.
    """

    def __init__(
        self,
        redis: RedisClient,
        channels: Sequence[str],
        probe: EndedProbe,
        *,
        recheck_interval: float = 30.0,
        max_backoff: float = 5.0,
    ) -> None:
        self._redis = redis
        self._channels = list(channels)
        self._probe = probe
        self._recheck_interval = recheck_interval
        self._max_backoff = max_backoff
        self._waits: dict[str, set[asyncio.Event]] = {}
        self._pubsub: ShardSubscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    async def start(self) -> None:
        """Subscribe, and return once the subscription is confirmed."""
        self._closed = False
        await self._subscribe()
        self._dispatch()

    def _dispatch(self) -> None:
        self._task = asyncio.create_task(self._run(), name="decision-waiter")
        self._task.add_done_callback(self._dispatcher_ended)

    def _dispatcher_ended(self, task: asyncio.Task[None]) -> None:
        """Every wait depends on the dispatcher: one that ends before ``close`` is started again."""
        if self._closed or task is not self._task:
            return
        why = "cancelled" if task.cancelled() else repr(task.exception())
        log.error(
            "decision dispatcher ended (%s) while %d waits depend on it; restarting it", why, len(self._waits)
        )
        # Its subscription may be half torn down: the new run subscribes afresh
        # and re-reads every pending wait, since messages in between are lost.
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            closing = asyncio.get_running_loop().create_task(pubsub.aclose())
            self._closing.add(closing)  # held until done: the loop keeps only weak references
            closing.add_done_callback(self._closing.discard)
        self._dispatch()

    async def close(self) -> None:
        """Stop listening; every wait in progress raises ``WaiterClosed``."""
        self._closed = True
        for events in self._waits.values():
            for event in events:
                event.set()
        if self._task is not None:
            await stop([self._task])
            self._task = None
        await self._drop()
        if self._closing:
            await asyncio.wait(self._closing)

    async def wait(
        self,
        request_id: str,
        load: Callable[[], Awaitable[T]],
        timeout: float | None,
    ) -> T | None:
        """Return ``load()`` as soon as it is not None; None after ``timeout``.

        ``load`` reads the stored outcome (None while pending). It runs once
        up front and again each time the request may have changed. ``T`` is
        what it returns, None included: typed ``Awaitable[T | None]``, mypy
        would solve ``T`` for a load returning ``A | B | None`` as ``object``.
        """
        if self._task is None or self._closed:
            raise WaiterClosed("DecisionWaiter is not running")
        loop = asyncio.get_running_loop()
        until = None if timeout is None else loop.time() + timeout
        woken = asyncio.Event()
        self._waits.setdefault(request_id, set()).add(woken)
        try:
            while True:
                woken.clear()
                if self._closed:
                    raise WaiterClosed("closed while waiting")
                result = await load()
                if result is not None:
                    return result
                remaining = None if until is None else until - loop.time()
                if remaining is not None and remaining <= 0:
                    return None
                try:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for
                    # can swallow a cancel that races with the wake-up, and
                    # the SDK's cancel of can_use_tool must never be lost.
                    async with asyncio.timeout(remaining):
                        await woken.wait()
                except TimeoutError:
                    return None
        finally:
            events = self._waits.get(request_id)
            if events is not None:
                events.discard(woken)
                if not events:
                    del self._waits[request_id]

    def _wake(self, request_id: str) -> None:
        for event in self._waits.get(request_id, ()):
            event.set()

    async def _subscribe(self) -> ShardSubscription:
        pubsub = ShardSubscription(self._redis, self._channels)
        await pubsub.open(timeout=self._max_backoff)
        self._pubsub = pubsub
        return pubsub

    async def _drop(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            await pubsub.aclose()

    async def _recheck(self) -> None:
        if not self._waits:
            return
        for request_id in await self._probe(list(self._waits)):
            self._wake(request_id)

    def _handle(self, message: dict[str, Any]) -> bool:
        """Wake the wait a decision names; whether ``message`` confirms a (re-)subscription."""
        if message["type"] == "smessage":
            data = message["data"]
            self._wake(data.decode() if isinstance(data, bytes) else data)
        return bool(message["type"] == "ssubscribe")

    async def _run(self) -> None:
        backoff = 0.05
        while not self._closed:
            try:
                pubsub = self._pubsub
                if pubsub is None:
                    pubsub = await self._subscribe()
                    log.info("decision channels subscribed again; re-checking %d waits", len(self._waits))
                    metrics.pubsub_reconnected()
                    await self._recheck()
                    backoff = 0.05
                message = await pubsub.next(timeout=self._recheck_interval)
                if message is None:
                    # Quiet for a while: prove the connection is alive (a
                    # half-open TCP connection would otherwise block forever)
                    # and re-check, in case a message was ever lost.
                    await pubsub.ping()
                    await self._recheck()
                    continue
                resubscribed = self._handle(message)
                # Take what is already read too: a reconnect replays one
                # confirmation per channel, and one re-check covers them all.
                for _ in range(_DRAIN):
                    if (message := await pubsub.next(timeout=0)) is None:
                        break
                    resubscribed |= self._handle(message)
                if resubscribed:
                    # redis-py reconnected and re-subscribed on its own (or, on
                    # a cluster, moved channels to a promoted replica):
                    # whatever was published in between is lost, so read the
                    # stored states now that the subscription is live.
                    log.info("decision channels re-subscribed; re-checking %d waits", len(self._waits))
                    metrics.pubsub_reconnected()
                    await self._recheck()
            except asyncio.CancelledError as exc:
                task = asyncio.current_task()
                if self._closed or task is None or task.cancelling():
                    raise
                # Nobody cancelled the dispatcher: a library let a cancel of
                # its own work escape. A failure to retry, not a stop.
                log.warning("decision channel: stray cancellation (%r); reconnecting in %.2fs", exc, backoff)
                await self._drop()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
            except Exception as exc:
                # Never let the dispatcher die: every wait depends on it.
                unexpected = not isinstance(exc, (RedisError, OSError, TimeoutError))
                log.warning(
                    "decision channel lost (%s); reconnecting in %.2fs", exc, backoff, exc_info=unexpected
                )
                await self._drop()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
