"""The worker's own routes: ``GET /healthz``, ``GET /readyz`` and ``GET /metrics``."""

from __future__ import annotations

import asyncio

from aiohttp import web
from redis.exceptions import RedisError
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from . import metrics
from .redis_client import RedisClient
from .slack.identity import TrustedOrgs
from .slack.jobs import SlackJobWorker
from .tasks import describe

HEALTH_PING_TIMEOUT = 2.0
"""Seconds ``/healthz`` waits for Redis's PING (load balancers give up after a few)."""


class Health:
    """What the worker answers about itself; ``socket_mode`` is its Socket Mode connection (None over HTTP)."""

    def __init__(self, redis: RedisClient, jobs: SlackJobWorker, trust: TrustedOrgs) -> None:
        self.redis = redis
        self.jobs = jobs
        self.trust = trust
        self.socket_mode: AsyncSocketModeHandler | None = None

    async def problems(self) -> dict[str, object]:
        """What stops this worker from working now (empty when nothing does)."""
        problems: dict[str, object] = {}
        try:
            async with asyncio.timeout(HEALTH_PING_TIMEOUT):
                await self.redis.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            problems["redis"] = describe(exc)
        loops = self.jobs.health()
        if loops:
            problems["loops"] = loops
        if self.socket_mode is not None and not await self.socket_mode.client.is_connected():
            # No click can reach this worker now.
            problems["socket_mode"] = "disconnected"
        return problems

    async def readyz(self, request: web.Request) -> web.Response:
        """200 only when this worker should get traffic: Redis answers, every loop runs, and Slack's
        ``auth.test`` has passed since it started (until then it refuses every click: whose
        workspace it serves is not known yet). 503 naming what is missing otherwise."""
        problems = await self.problems()
        if not self.trust.known:
            problems["slack"] = "auth.test has not passed yet"
        if problems:
            return web.json_response({"ready": False, **problems}, status=503)
        return web.json_response({"ready": True})

    async def metrics(self, request: web.Request) -> web.Response:
        """Prometheus's text format: this process's figures and the shared ones read from Redis (``bot.metrics``)."""
        body = await metrics.exposition(self.redis)
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})

    async def healthz(self, request: web.Request) -> web.Response:
        """200 ``{"ok": true}`` while this worker can work; 503 naming what stops it.

        In Socket Mode the connection is reported too (``"socket_mode"``): while
        it is down no click reaches this worker, so it is a 503.

        PING alone is not the truth: a replica left behind by a failover, or a
        primary short of replicas, answers PING and refuses every write, so the
        job loops report their own state too (no Redis call: they record it as
        they run)."""
        problems = await self.problems()
        if problems:
            return web.json_response({"ok": False, **problems}, status=503)
        if self.socket_mode is not None:
            return web.json_response({"ok": True, "socket_mode": "connected"})
        return web.json_response({"ok": True})
