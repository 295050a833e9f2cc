"""The two Redis deployments besides one primary: a cluster and a Sentinel-watched primary.

``redis_client.connect`` picks one of them by ``Topology``; this module holds what
makes each of them keep the promise of the single-primary pool: a burst of
commands queues for a connection instead of failing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.asyncio.sentinel import SentinelConnectionPool

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
"""URL schemes that ask for a cluster client, and the scheme redis-py is given instead."""


MAX_WAIT_REPLICAS = 16


@dataclass(frozen=True)
class Topology:
    """How the Redis of ``REDIS_URL`` is deployed (``Settings.redis_topology``).

    The default is one primary. ``cluster``: a Redis Cluster, ``REDIS_URL`` naming
    any one of its nodes. ``sentinels`` (``host``, ``port`` pairs) with
    ``sentinel_master``: a primary the Sentinels watch; clients ask them where it is
    and follow a failover, taking password, database and TLS from ``REDIS_URL``."""

    cluster: bool = False
    sentinels: tuple[tuple[str, int], ...] = ()
    sentinel_master: str = ""
    wait_replicas: int = 0
    """Replicas that must hold a decision before it counts (``approvals.replication``): 0 trusts
    the primary alone, as asynchronous replication does."""

    def __post_init__(self) -> None:
        if self.sentinels and not self.sentinel_master:
            raise ValueError("REDIS_SENTINELS needs REDIS_SENTINEL_MASTER, the name the Sentinels monitor")
        if not 0 <= self.wait_replicas <= MAX_WAIT_REPLICAS:
            raise ValueError(f"REDIS_WAIT_REPLICAS must be between 0 and {MAX_WAIT_REPLICAS}")
        if self.sentinels and self.cluster:
            raise ValueError(
                "REDIS_SENTINELS and REDIS_CLUSTER exclude each other: a cluster fails over itself"
            )

    def environment(self) -> dict[str, str]:
        """The settings that make another process (the gate hook Claude Code starts) connect the same way."""
        env = {"REDIS_CLUSTER": "1"} if self.cluster else {}
        if self.sentinels:
            env["REDIS_SENTINELS"] = ",".join(
                f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.sentinels
            )
            env["REDIS_SENTINEL_MASTER"] = self.sentinel_master
        if self.wait_replicas:
            env["REDIS_WAIT_REPLICAS"] = str(self.wait_replicas)
        return env


def parse_sentinels(value: str) -> tuple[tuple[str, int], ...]:
    """``host:port,host:port`` → pairs; ``ValueError`` names an entry that is not one."""
    pairs = []
    for entry in filter(None, (part.strip() for part in value.split(","))):
        host, _, port = entry.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"REDIS_SENTINELS: {entry!r} is not host:port")
        pairs.append((host.strip("[]"), int(port)))
    return tuple(pairs)


_holding: ContextVar[bool] = ContextVar("holding_a_cluster_permit", default=False)
"""Whether the running task (or the command it is part of) holds a ``QueuedCluster`` permit."""


class QueuedCluster(RedisCluster):
    """A ``RedisCluster`` on which a burst waits for a connection instead of failing.

    redis-py's cluster client keeps one pool per node, and a full one raises
    ``MaxConnectionsError`` at once: it has no blocking pool. A semaphore of
    ``max_connections - reserved`` permits around every command and pipeline
    brings the queueing back: one permit uses at most one connection per node,
    so no node's pool ever fills. ``reserved`` connections per node stay free
    for what does not pass here, the decision subscription."""

    def __init__(self, *, max_connections: int, reserved: int = 1, **kwargs: Any) -> None:
        super().__init__(max_connections=max_connections, **kwargs)
        self._permits = asyncio.Semaphore(max(1, max_connections - reserved))

    @asynccontextmanager
    async def permit(self) -> AsyncIterator[None]:
        """One permit, unless the caller already holds one: redis-py runs a command over
        several slots (``EXISTS a b``) as a pipeline, and a pipeline retries a failed command
        through ``execute_command``; waiting for a second permit there could wait forever."""
        if _holding.get():
            yield
            return
        async with self._permits:
            token = _holding.set(True)
            try:
                yield
            finally:
                _holding.reset(token)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.permit():
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        if shard_hint:  # refused by RedisCluster.pipeline too
            return super().pipeline(transaction, shard_hint)
        return _QueuedPipeline(self, transaction)


class _QueuedPipeline(ClusterPipeline):
    """A pipeline that takes one of its client's permits while it runs."""

    def __init__(self, client: QueuedCluster, transaction: Any | None = None) -> None:
        super().__init__(client, transaction)
        self._queued_client = client
        # Abstract in redis-py's command mixins, which ClusterPipeline never sets; the client's is the one in use.
        self._event_dispatcher = client._event_dispatcher

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        async with self._queued_client.permit():
            return await super().execute(raise_on_error, allow_redirections)


class QueuedSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool (finds the primary, drops connections to a demoted one) with the
    single-primary pool's queueing: past ``max_connections``, callers wait ``timeout``."""


class SentinelClient(Redis):
    """The client of the primary the Sentinels name (``Sentinel.master_for``); closing it
    also closes its connections to the Sentinels, which redis-py leaves open."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        pool = self.connection_pool
        if isinstance(pool, SentinelConnectionPool):
            for sentinel in pool.sentinel_manager.sentinels:
                await sentinel.aclose()
