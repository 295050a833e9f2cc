"""Where the playground keeps requests: an in-process Redis, or the server ``REDIS_URL`` names.

The in-process store is fakeredis with Lua, so the same scripts, streams and
pub/sub run as in production, inside this one process: enough for one worker
and one agent, not for several processes sharing requests.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from redis.asyncio import Redis

from ..redis_client import (
    AGENT_CLIENT_NAME,
    AGENT_CONNECTIONS,
    WORKER_CLIENT_NAME,
    WORKER_CONNECTIONS,
    RedisClient,
    connect,
    redacted,
)

IN_PROCESS_NOTICE = (
    "storage: in-process Redis (fakeredis); several workers or agent hosts need a real one: set REDIS_URL"
)


@dataclass(frozen=True)
class Storage:
    """One client for the bot worker, one for the agent, and how to describe them."""

    worker: RedisClient
    agent: RedisClient
    description: str


async def open_storage(redis_url: str | None) -> Storage:
    """The server ``redis_url`` names, or a fresh in-process one when it is None."""
    if redis_url:
        return Storage(
            worker=connect(redis_url, name=WORKER_CLIENT_NAME, max_connections=WORKER_CONNECTIONS),
            agent=connect(redis_url, name=AGENT_CLIENT_NAME, max_connections=AGENT_CONNECTIONS),
            description=f"storage: Redis at {redacted(redis_url)}",
        )
    import fakeredis  # only the playground needs it

    server = fakeredis.FakeServer()
    worker, agent = fakeredis.FakeAsyncRedis(server=server), fakeredis.FakeAsyncRedis(server=server)
    await _add_sha1hex(server, worker)
    return Storage(worker, agent, IN_PROCESS_NOTICE)


async def _add_sha1hex(server: object, client: Redis) -> None:
    """Give fakeredis's Lua the ``redis.sha1hex`` that real Redis has.

    The audit log's hash chain is computed inside the transitions with it,
    and fakeredis (2.40) leaves it out. Its Lua runtime exists once a script
    has run; the function is added to the ``redis`` table every script sees.
    """
    await client.eval("return 1", 0)
    runtime = server._lua_runtime  # type: ignore[attr-defined]
    runtime.globals().redis.sha1hex = lambda data: hashlib.sha1(data).hexdigest().encode()
