"""The worker's aiohttp application: ``POST /slack/events`` and ``GET /healthz``."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier

from .approvals.policy import Policy
from .approvals.queue import JobQueue
from .approvals.store import RequestStore
from .redis_client import WORKER_CLIENT_NAME, WORKER_CONNECTIONS, connect
from .settings import Settings
from .slack.app import background_client, build_app, interactive_client, keep_alive
from .slack.jobs import SlackJobWorker

log = logging.getLogger(__name__)

SLACK_EVENTS_PATH = "/slack/events"
HEALTHZ_PATH = "/healthz"

_BOLT = web.AppKey("bolt", AsyncApp)
_REDIS = web.AppKey("redis", Redis)
_VERIFIER = web.AppKey("verifier", SignatureVerifier)


def serve_settings_required(settings: Settings) -> tuple[str, ...]:
    """The settings ``serve`` cannot run without."""
    needed = ["redis_url", "slack_bot_token", "approval_channel"]
    if settings.slack_app_token is None:
        needed.append("slack_signing_secret")
    return tuple(needed)


def load_policy(settings: Settings) -> Policy:
    """The team policy, or the built-in default (ask in the approval channel, anyone decides).

    Raises ``PolicyError`` naming the rule and field when the file is invalid."""
    return Policy.load(settings.approval_policy) if settings.approval_policy else Policy()


def create_app(settings: Settings, *, consumer: str | None = None, redis: Redis | None = None) -> web.Application:
    """One bot worker: Slack endpoint, health check, job worker, Socket Mode if configured.

    ``redis`` replaces the connection ``REDIS_URL`` names (the demo's in-process
    store); the app closes it when it stops either way."""
    needed = serve_settings_required(settings)
    settings.require(*(name for name in needed if redis is None or name != "redis_url"))
    policy = load_policy(settings)
    if redis is None:
        connections = settings.redis_max_connections or WORKER_CONNECTIONS
        redis = connect(settings.redis_url, name=WORKER_CLIENT_NAME, max_connections=connections)
    store = RequestStore(redis, today=policy.today)
    queue = JobQueue(redis, consumer or _consumer_name(), retry_after=settings.job_retry_after)
    interactive, background = interactive_client(settings), background_client(settings)
    bolt = build_app(settings, interactive, store, queue)
    jobs = SlackJobWorker(
        store,
        queue,
        background,
        policy=policy,
        default_channel=settings.approval_channel,
        sweep_interval=settings.sweep_interval,
    )

    app = web.Application()
    app[_BOLT] = bolt
    app[_REDIS] = redis
    app.router.add_get(HEALTHZ_PATH, _healthz)
    if settings.slack_app_token is None:
        app[_VERIFIER] = SignatureVerifier(settings.slack_signing_secret.get_secret_value())
        app.router.add_post(SLACK_EVENTS_PATH, _slack_events)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        async with keep_alive(interactive, background):
            await jobs.start()
            socket_mode = None
            if settings.slack_app_token is not None:
                socket_mode = AsyncSocketModeHandler(bolt, settings.slack_app_token.get_secret_value())
                await socket_mode.connect_async()
            try:
                yield
            finally:
                if socket_mode is not None:
                    await socket_mode.close_async()
                await jobs.close()
                await redis.aclose()

    app.cleanup_ctx.append(lifecycle)
    return app


def _consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


async def _healthz(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(2):
            await request.app[_REDIS].ping()
    except (RedisError, OSError, TimeoutError) as exc:
        return web.json_response({"ok": False, "redis": str(exc) or type(exc).__name__}, status=503)
    return web.json_response({"ok": True})


async def _slack_events(request: web.Request) -> web.Response:
    """Check signature and shape before Bolt sees the request.

    Bolt answers a malformed body with a 500; Slack and operators deserve a
    401 for a forged or stale request and a 400 for a broken one.
    """
    body = await request.read()
    try:
        body.decode("utf-8")  # the signature check itself decodes, and would raise
    except UnicodeDecodeError:
        log.warning("rejected a Slack request whose body is not UTF-8")
        return web.json_response({"error": "body is not UTF-8"}, status=400)
    if not request.app[_VERIFIER].is_valid_request(body, dict(request.headers)):
        log.warning("rejected a request with a missing, invalid or stale Slack signature")
        return web.json_response({"error": "invalid signature"}, status=401)
    problem = _malformed(body, request.content_type)
    if problem:
        log.warning("rejected a malformed Slack request: %s", problem)
        return web.json_response({"error": problem}, status=400)
    response = await request.app[_BOLT].async_dispatch(await to_bolt_request(request))
    return await to_aiohttp_response(response)


def _malformed(body: bytes, content_type: str) -> str | None:
    """Why ``body`` is not a Slack request Bolt can route, or None."""
    decoded = body.decode("utf-8")
    if content_type == "application/json":
        try:
            event = json.loads(decoded)
        except ValueError:
            return "body is not JSON"
        return None if isinstance(event, dict) and "type" in event else "JSON body without a type"
    if content_type == "application/x-www-form-urlencoded":
        form = parse_qs(decoded)
        if "command" in form:
            return None  # slash command
        if "payload" not in form:
            return "form without payload"
        try:
            payload = json.loads(form["payload"][0])
        except ValueError:
            return "payload is not JSON"
        return None if isinstance(payload, dict) and isinstance(payload.get("type"), str) else "payload without a type"
    return f"unexpected content type {content_type!r}"
