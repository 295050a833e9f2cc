"""How every process of the project connects to Redis."""

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, TimeoutError


def connect(url: str, *, max_connections: int = 20) -> Redis:
    """A client whose pool queues callers past ``max_connections`` and survives Redis restarts.

    redis-py's default pool raises ``MaxConnectionsError`` when too many
    commands run at once; a burst of tool calls must wait its turn instead.
    A pool built from a URL does not retry by default, so the first command
    after a Redis restart would fail on its stale connection: retry on
    connection errors. That is safe because every write is idempotent (the
    Lua transitions check the state they change).
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=None,
        socket_connect_timeout=5,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=3),
        retry_on_error=[ConnectionError, TimeoutError, OSError],
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes its connections
