"""Waiting for replicas before a decision counts (``REDIS_WAIT_REPLICAS``).

Redis replicates asynchronously: a primary that fails right after a script
wrote an approval can take it along, and its promoted replica shows the request
pending again. ``WAIT n`` makes a client's own earlier writes reach ``n``
replicas, and a primary replicates in order. So ``state`` reads the request,
writes one key of the request's slot and WAITs, all on one connection to one
primary: once ``n`` replicas acknowledge that write, they hold the state that
read returned too, whichever failover comes next. An agent allows only on such
a state; a worker confirms each click that way (``slack.deciding``).
"""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio.cluster import PipelineCommand, RedisCluster
from redis.exceptions import RedisError

from ..redis_client import RedisClient
from ..redis_topology import QueuedCluster
from . import keys
from .codec import text
from .record import Field
from .states import State

WAIT_TIMEOUT_MS = 1000
"""How long one confirmation waits for the replicas' acknowledgement."""


class Replication:
    """Confirms that ``replicas`` replicas hold a request's state (nothing to confirm with 0)."""

    def __init__(self, redis: RedisClient, replicas: int = 0) -> None:
        if replicas < 0:
            raise ValueError("REDIS_WAIT_REPLICAS cannot be negative")
        self.redis = redis
        self.replicas = replicas

    async def state(self, request_id: str, voter: str = "") -> State | None:
        """The request's state as read on a primary whose replicas then acknowledged it;
        None when fewer than ``replicas`` did within ``WAIT_TIMEOUT_MS``, when Redis failed,
        when the request is gone, or (with ``voter``) when it holds no vote of ``voter``."""
        request, marker = keys.request(request_id), keys.replicated(keys.shard_of(request_id))
        commands: list[tuple[Any, ...]] = [
            ("HGET", request, Field.STATE),
            ("HEXISTS", keys.votes(request_id), voter or "-"),
            ("SET", marker, repr(time.time()), "PX", keys.REPLICATED_TTL_MS),
            ("WAIT", self.replicas, WAIT_TIMEOUT_MS),
        ]
        try:
            state, voted, _set, acked = await _on_one_connection(self.redis, request, commands)
        except (RedisError, OSError):
            return None
        if state is None or int(acked) < self.replicas or (voter and not voted):
            return None
        return State(text(state))

    async def holds(self, request_id: str, state: State) -> bool:
        """Whether ``state`` is what replicas hold for the request (always, with no replicas asked)."""
        return not self.replicas or await self.state(request_id) is state


async def _on_one_connection(redis: RedisClient, key: str, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send ``commands`` in order on one connection to the primary of ``key``'s slot (WAIT counts
    only that connection's writes); an error any of them met is raised."""
    if not isinstance(redis, RedisCluster):
        async with redis.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return list(await pipe.execute())
    if isinstance(redis, QueuedCluster):
        async with redis.permit():
            return await _on_node(redis, key, commands)
    return await _on_node(redis, key, commands)


async def _on_node(redis: RedisCluster, key: str, commands: list[tuple[Any, ...]]) -> list[Any]:
    if not redis.nodes_manager.slots_cache:
        await redis.initialize()
    # A slot map gone stale in a failover answers MOVED here: reported as a failure, and the
    # caller's next ordinary command (which follows MOVED) refreshes the map.
    node = redis.get_node_from_key(key)
    if node is None:
        raise RedisError(f"no node serves the slot of {key}")
    sent = [PipelineCommand(position, *command) for position, command in enumerate(commands)]
    await node.execute_pipeline(sent)
    for command in sent:
        if isinstance(command.result, Exception):
            raise command.result
    return [command.result for command in sent]
