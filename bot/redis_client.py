"""How every process of the project connects to Redis."""

from __future__ import annotations

import builtins
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, TimeoutError

from .approvals.keys import SHARDS
from .redis_topology import CLUSTER_SCHEMES, QueuedCluster, QueuedSentinelPool, SentinelClient, Topology

RedisClient: TypeAlias = Redis | RedisCluster
"""What ``connect`` returns: a client of one primary (Sentinel's included) or of a cluster."""

AGENT_CLIENT_NAME = "slack-approvals-agent"
WORKER_CLIENT_NAME = "slack-approvals-worker"
GATE_CLIENT_NAME = "slack-approvals-gate"
CLI_CLIENT_NAME = "slack-approvals-cli"
"""Names each role's connections carry, so ``CLIENT LIST`` shows who holds what."""

AGENT_CONNECTIONS = 3
"""An agent process: its decision subscription and two connections for commands.
Concurrent reads and transitions are batched into pipelines, so 10,000 waiting
calls need no more."""
WORKER_CONNECTIONS = 40 + SHARDS
"""A worker: Slack requests (a click must not queue for a connection), up to 16 jobs a person waits on
and 16 others at once, the shared Slack budget, and a blocking read of each shard's job stream."""


CONNECT_TIMEOUT = 5.0
"""Seconds to open a TCP connection to Redis."""
READ_TIMEOUT = 5.0
"""Seconds to wait for any one reply (the connection's handshake included).

A Redis that accepts connections and then never answers (a stuck fsync, a
paused VM, a proxy whose backend is gone) must not hold a caller for long: a
gate hook held past its ``timeout`` lets the tool run (DESIGN.md §4). Set
here, not left to whatever the installed redis-py defaults to. It must stay above the longest blocking command we send: the
workers' ``XREADGROUP BLOCK 1000`` (``slack/jobs.py``). The decision
subscription is not cut by it: ``PubSub.get_message(timeout=…)`` reads with
its own timeout (redis-py passes it per read), so an idle subscription lives on."""
QUEUE_TIMEOUT = 10.0
"""Seconds a caller waits for a free connection of the pool before it fails.

In a healthy process a connection frees up within milliseconds; this only
fires when every connection is stuck on a Redis that does not answer, so
callers queued behind them fail too instead of waiting their turn to stall."""
RETRIES = 3
"""Retries after a connection error (a Redis restart leaves stale connections)."""


def connect(
    url: str,
    *,
    name: str,
    max_connections: int = WORKER_CONNECTIONS,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
    topology: Topology | None = None,
) -> RedisClient:
    """A client whose pool queues callers past ``max_connections`` and survives Redis restarts.

    ``max_connections`` counts every connection, pub/sub subscriptions included
    (on a cluster: per node). ``connect_timeout`` and ``read_timeout`` bound each
    connection attempt and each reply; no call waits on Redis longer than about
    their sum, plus the ``QUEUE_TIMEOUT`` for a connection when all of them are busy.

    redis-py's default pool raises ``MaxConnectionsError`` when too many
    commands run at once; a burst of tool calls must wait its turn instead.
    A pool built from a URL does not retry by default, so the first command
    after a Redis restart would fail on its stale connection: retry on
    connection errors. That is safe because every write is idempotent (the
    Lua transitions check the state they change). Timeouts are not retried:
    a Redis that let ``read_timeout`` pass without a word is stalled, not
    restarting, and redis-py nests its retries (each command retry reconnects,
    and each reconnect has retries of its own), so retrying timeouts would
    multiply the wait many times over while the caller's answer is already
    late. Every connection is named ``name`` (``CLIENT SETNAME``).

    ``topology`` (``Settings.redis_topology()``) says whether ``url`` names one
    primary, a node of a cluster (also said by a ``redis+cluster://`` or
    ``rediss+cluster://`` URL) or, with Sentinels, only the password, database
    and TLS of a primary the Sentinels find.
    """
    topology = topology or Topology()
    scheme, sep, rest = url.partition("://")
    if sep and scheme in CLUSTER_SCHEMES:
        url, topology = f"{CLUSTER_SCHEMES[scheme]}://{rest}", Topology(cluster=True)
    options: dict[str, Any] = {
        "client_name": name,
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": read_timeout,
        "retry": Retry(
            ExponentialWithJitterBackoff(base=0.05, cap=1.0),
            retries=RETRIES,
            supported_errors=(ConnectionError,),
        ),
        "retry_on_error": [ConnectionError],
    }
    if topology.cluster:
        # Replicas lag: a read there could show a decided request as still pending, or the
        # reverse. With no load_balancing_strategy (redis-py's default) every command goes to
        # the slot's primary.
        return QueuedCluster.from_url(
            url, max_connections=max_connections, require_full_coverage=True, **options
        )
    if topology.sentinels:
        return _sentinel_client(url, topology, max_connections, options)
    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=QUEUE_TIMEOUT, **options
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes its connections


def _sentinel_client(url: str, topology: Topology, max_connections: int, options: dict[str, Any]) -> Redis:
    """A client of the primary the Sentinels name, asking them again after a connection fails.

    The Sentinels are asked without the primary's password or name (they have
    their own), within the same timeouts."""
    settings: dict[str, Any] = dict(parse_url(url))  # password, username, db, TLS of the primary
    settings.pop("host", None)
    settings.pop("port", None)
    if settings.pop("connection_class", None) is SSLConnection:  # rediss://
        settings["ssl"] = True  # Sentinel's pool then picks its own TLS connection class
    sentinel = Sentinel(
        topology.sentinels,
        sentinel_kwargs={
            "socket_connect_timeout": options["socket_connect_timeout"],
            "socket_timeout": options["socket_timeout"],
        },
    )
    client: Redis = sentinel.master_for(
        topology.sentinel_master,
        redis_class=SentinelClient,
        connection_pool_class=QueuedSentinelPool,
        max_connections=max_connections,
        timeout=QUEUE_TIMEOUT,
        **settings,
        **options,
    )
    return client  # the client owns the pool (``from_pool``): aclose() closes it


MINIMUM_SERVER = (7, 0)
"""Every script opens with ``#!lua`` (script flags, Redis 7.0), which Redis 6 cannot load.
Valkey 7.2 and later report a ``redis_version`` of at least 7.2."""


async def server_version(redis: RedisClient) -> tuple[int, ...]:
    """The ``redis_version`` Redis reports (on a cluster: the oldest of the nodes that answer)."""
    info: dict[str, Any] = await redis.info("server")
    nodes = [info] if "redis_version" in info else list(info.values())
    return min(tuple(int(part) for part in str(node["redis_version"]).split(".")) for node in nodes)


def timed_out(error: BaseException) -> bool:
    """Whether ``error`` means Redis took the connection but did not answer in time.

    A ``TimeoutError`` from redis-py or from an ``asyncio.timeout``, or the
    pool's "No connection available" after ``QUEUE_TIMEOUT`` (every
    connection stuck), as opposed to a refused or reset connection.
    """
    if isinstance(error, (TimeoutError, builtins.TimeoutError)):
        return True
    return isinstance(error, ConnectionError) and isinstance(error.__cause__, builtins.TimeoutError)


def redacted(url: str) -> str:
    """``url`` with its password starred out, for logs and messages."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
