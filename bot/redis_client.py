"""How every process of the project connects to Redis."""

from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, TimeoutError

AGENT_CLIENT_NAME = "slack-approvals-agent"
WORKER_CLIENT_NAME = "slack-approvals-worker"
GATE_CLIENT_NAME = "slack-approvals-gate"
CLI_CLIENT_NAME = "slack-approvals-cli"
"""Names each role's connections carry, so ``CLIENT LIST`` shows who holds what."""

AGENT_CONNECTIONS = 3
"""An agent process: its decision subscription and two connections for commands.
Concurrent reads and transitions are batched into pipelines, so 10,000 waiting
calls need no more."""
WORKER_CONNECTIONS = 20
"""A worker: Slack requests, up to 16 jobs at once and a blocking read of the job stream."""


def connect(url: str, *, name: str, max_connections: int = WORKER_CONNECTIONS) -> Redis:
    """A client whose pool queues callers past ``max_connections`` and survives Redis restarts.

    ``max_connections`` counts every connection, pub/sub subscriptions included.

    redis-py's default pool raises ``MaxConnectionsError`` when too many
    commands run at once; a burst of tool calls must wait its turn instead.
    A pool built from a URL does not retry by default, so the first command
    after a Redis restart would fail on its stale connection: retry on
    connection errors. That is safe because every write is idempotent (the
    Lua transitions check the state they change). Every connection is named
    ``name`` (``CLIENT SETNAME``).
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        client_name=name,
        timeout=None,
        socket_connect_timeout=5,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=3),
        retry_on_error=[ConnectionError, TimeoutError, OSError],
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes its connections


def redacted(url: str) -> str:
    """``url`` with its password starred out, for logs and messages."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
