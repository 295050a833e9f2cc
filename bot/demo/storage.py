"""Where the playground keeps requests: an in-process Redis, or the server ``REDIS_URL`` names.

The in-process store is fakeredis with Lua, so the same scripts, streams and
pub/sub run as in production, inside this one process: enough for one worker
and one agent, not for several processes sharing requests.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.typing import ScriptTextT

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

    class InProcess(fakeredis.FakeAsyncRedis):
        """fakeredis (2.41) cannot compile a script's ``#!lua`` flags line, which says what to
        refuse on a cluster or over ``maxmemory``: neither exists in process, so it is left out."""

        def register_script(self, script: ScriptTextT) -> Any:  # an AsyncScript; typed Script upstream
            text = script.decode() if isinstance(script, bytes) else str(script)
            first_line, _, body = text.partition("\n")
            return super().register_script(body if first_line.startswith("#!") else text)

    server = fakeredis.FakeServer()
    worker, agent = InProcess(server=server), InProcess(server=server)
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
