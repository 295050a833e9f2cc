"""ScriptRunner: the Lua scripts many tasks start in one event-loop turn, sent in one pipeline."""

from __future__ import annotations

from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from ...redis_client import RedisClient
from ..coalesce import Coalescer

_ScriptCall = tuple[AsyncScript, list[str], list[Any]]


class ScriptRunner:
    """Runs registered scripts; calls started together go to Redis in one round trip."""

    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self._calls: Coalescer[_ScriptCall, Any] = Coalescer(self._run)

    def register(self, script: str) -> AsyncScript:
        return self.redis.register_script(script)

    async def run(self, script: AsyncScript, *, keys: list[str], args: list[Any]) -> Any:
        """Run one Lua script and return its reply (an error it raised is raised here)."""
        return await self._calls.get((script, keys, args))

    async def aclose(self) -> None:
        """Stop the batches still running (``Coalescer.aclose``)."""
        await self._calls.aclose()

    async def _run(self, calls: list[_ScriptCall]) -> list[Any]:
        # EVALSHA by hand: redis-py's pipelined Script adds a SCRIPT EXISTS
        # round trip to every pipeline. NOSCRIPT (Redis restarted or was
        # flushed) loads the script and runs those calls again.
        replies = await self._evalsha(calls)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            for script in {calls[i][0].sha: calls[i][0] for i in missing}.values():
                await self.redis.script_load(script.script)
            for i, reply in zip(missing, await self._evalsha([calls[i] for i in missing]), strict=True):
                replies[i] = reply
        return replies

    async def _evalsha(self, calls: list[_ScriptCall]) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for script, script_keys, args in calls:
                pipe.evalsha(script.sha, len(script_keys), *script_keys, *args)
            return await pipe.execute(raise_on_error=False)
