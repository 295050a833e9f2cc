"""ShardSubscription: the shards' decisions channels (SSUBSCRIBE), on one primary or a cluster."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterPubSub
from redis.exceptions import RedisError

from ..redis_client import RedisClient

CLUSTER_READ = 0.05
"""Seconds one read of a cluster subscription waits: at most what a decision on one node
waits while the reader listens to another."""


class ShardSubscription:
    """Sharded channels read as one stream of messages.

    On one primary a single connection carries every channel. On a cluster,
    redis-py's ``ClusterPubSub`` keeps one connection per node that owns a
    channel's slot (never one per channel or per wait), follows a failover or a
    slot move on its own, and says so only by a new ``ssubscribe`` confirmation:
    the reader treats every confirmation after ``open`` as a cue to re-read."""

    def __init__(self, redis: RedisClient, channels: Sequence[str]) -> None:
        self._channels = list(channels)
        self._pubsub: PubSub = redis.pubsub()

    async def open(self, timeout: float) -> None:
        """Subscribe, and return once Redis confirmed every channel: a message published
        before a channel's confirmation would not reach us. ``TimeoutError`` after ``timeout``
        seconds without one."""
        try:
            await self._pubsub.ssubscribe(*self._channels)
            confirmed: set[str] = set()
            while len(confirmed) < len(self._channels):
                message = await self.next(timeout)
                if message is None:
                    raise TimeoutError("no ssubscribe confirmation from Redis")
                if message["type"] == "ssubscribe":
                    confirmed.add(_text(message["channel"]))
        except BaseException:
            await self.aclose()
            raise

    async def next(self, timeout: float) -> dict[str, Any] | None:
        """The next message (``smessage``, ``ssubscribe``, ``pong``…), or None after ``timeout``."""
        if not isinstance(self._pubsub, ClusterPubSub):
            return cast("dict[str, Any] | None", await self._pubsub.get_sharded_message(timeout=timeout))
        # ClusterPubSub shares a read's timeout out over its nodes and blocks on one
        # node for its share while another may hold a message: short reads bound that delay.
        until = time.monotonic() + timeout
        while True:
            left = until - time.monotonic()
            message = await self._pubsub.get_sharded_message(timeout=max(0.0, min(left, CLUSTER_READ)))
            if message is not None or left <= CLUSTER_READ:
                return message

    async def ping(self) -> None:
        """A PING down every connection, so a dead one is noticed (and redis-py reconnects it).

        On a cluster, a node that fails it is left to ``ClusterPubSub`` (it cools the node
        off and refreshes the slot map): only when every node fails is the subscription lost."""
        if not isinstance(self._pubsub, ClusterPubSub):
            await self._pubsub.ping()
            return
        errors: list[BaseException] = []
        nodes = [node for node in list(self._pubsub.node_pubsub_mapping.values()) if node.connection]
        for node in nodes:
            try:
                # The lock ClusterPubSub's own reader and re-routes write this connection under.
                async with ClusterPubSub._pubsub_io_lock(node):
                    await node.ping()
            except (RedisError, OSError) as exc:
                errors.append(exc)
        if nodes and len(errors) == len(nodes):
            raise errors[0]

    async def aclose(self) -> None:
        try:
            await self._pubsub.aclose()
        except (RedisError, OSError):
            pass


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
