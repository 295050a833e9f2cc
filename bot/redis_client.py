"""How every process of the project connects to Redis."""

from redis.asyncio import BlockingConnectionPool, Redis


def connect(url: str, *, max_connections: int = 20) -> Redis:
    """A client whose pool queues callers past ``max_connections``.

    redis-py's default pool raises ``MaxConnectionsError`` when too many
    commands run at once; a burst of tool calls must wait its turn instead.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=None,
        socket_connect_timeout=5,
        decode_responses=False,
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes its connections
