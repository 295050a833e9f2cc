"""Waiting for replicas before a decision counts (``REDIS_WAIT_REPLICAS``).

Redis replicates asynchronously: a primary that fails right after a script
wrote an approval can take it along, and its promoted replica shows the request
pending again. ``WAIT n`` makes a client's own earlier writes reach ``n``
replicas, and a primary replicates in order. So ``confirmed`` reads the
request, writes one key of the request's slot and WAITs, all on one connection
to one primary: once ``n`` replicas acknowledge that write, they hold the
request as that read returned it too, whichever failover comes next. An agent
acts only on a request read that way, content included (``agent.outcome``); a
worker confirms each click that way (``slack.confirming``).
"""

from __future__ import annotations

import time
from typing import Any, cast

from redis.asyncio.cluster import PipelineCommand, RedisCluster
from redis.exceptions import RedisError

from ..redis_client import RedisClient
from ..redis_topology import QueuedCluster
from . import keys, record
from .codec import text
from .model import ApprovalRequest

WAIT_TIMEOUT_MS = 1000
"""How long one confirmation waits for the replicas' acknowledgement."""


class Replication:
    """Confirms that ``replicas`` replicas hold a request's state (nothing to confirm with 0)."""

    def __init__(self, redis: RedisClient, replicas: int = 0) -> None:
        if replicas < 0:
            raise ValueError("REDIS_WAIT_REPLICAS cannot be negative")
        self.redis = redis
        self.replicas = replicas

    async def confirmed(self, request_id: str) -> ApprovalRequest | None:
        """The request (with its votes) as read on a primary whose replicas then acknowledged
        it; None when fewer than ``replicas`` did within ``WAIT_TIMEOUT_MS``, when Redis
        failed, or when the request is gone. Without replicas asked: a plain read."""
        request, marker = keys.request(request_id), keys.replicated(keys.shard_of(request_id))
        commands: list[tuple[Any, ...]] = [
            ("HGETALL", request),
            ("HGETALL", keys.votes(request_id)),
            ("SET", marker, repr(time.time()), "PX", keys.REPLICATED_TTL_MS),
            ("WAIT", self.replicas, WAIT_TIMEOUT_MS),
        ]
        try:
            raw, votes, _set, acked = await _on_one_connection(self.redis, request, commands)
        except (RedisError, OSError):
            return None
        if not raw or int(acked) < self.replicas:
            return None
        return record.decode(_decoded(raw), _decoded(votes))


def _decoded(raw: Any) -> dict[str, str]:
    # A pipeline's raw HGETALL is a flat list on RESP2 connections, a dict otherwise.
    if isinstance(raw, list):
        raw = dict(zip(raw[::2], raw[1::2], strict=True))
    return {text(k): text(v) for k, v in cast(dict[Any, Any], raw).items()}


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
