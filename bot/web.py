"""The worker's aiohttp application: ``POST /slack/events``, ``GET /healthz``, ``GET /readyz`` and ``GET /metrics``."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from redis.asyncio import Redis
from redis.exceptions import RedisError
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from . import logs, metrics
from .approvals.audit import AuditLog
from .approvals.policy import Policy
from .approvals.policy_reload import PolicyHolder
from .approvals.queue import JobQueue
from .approvals.store import RequestStore
from .edge import SlackEdge, answer_failures
from .redis_client import WORKER_CLIENT_NAME, WORKER_CONNECTIONS, connect
from .settings import Settings
from .slack.app import background_client, build_app, interactive_client, keep_alive
from .slack.budget import SlackBudget
from .slack.identity import FIRST_ANSWER_WAIT, TrustedOrgs, refuse_other_orgs
from .slack.jobs import SlackJobWorker
from .slack.replays import SignedRequests
from .tasks import describe, stop

log = logging.getLogger(__name__)

SLACK_EVENTS_PATH = "/slack/events"
HEALTHZ_PATH = "/healthz"
READYZ_PATH = "/readyz"
METRICS_PATH = "/metrics"
POLICY_WATCH_LOOP = "policy-watch"

JOB_DRAIN = 10.0
"""Seconds a stopping worker lets its running jobs finish before giving the rest back."""

_BOLT = web.AppKey("bolt", AsyncApp)
_REDIS = web.AppKey("redis", Redis)
_JOBS = web.AppKey("jobs", SlackJobWorker)
_TRUST = web.AppKey("trust", TrustedOrgs)
POLICY = web.AppKey("policy", PolicyHolder)
"""The worker's policy in force; ``serve`` reloads it on SIGHUP (``POLICY.hangup``)."""


class SocketModeRefused(RuntimeError):
    """Slack refused ``SLACK_APP_TOKEN`` when the worker started: the message says why, in one line."""


TOKEN_REFUSED = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "not_allowed_token_type",
        "missing_scope",
        "invalid_token",
    }
)
"""``apps.connections.open`` errors that say the app token itself is wrong: ``serve`` stops."""


class SocketState:
    """The worker's Socket Mode connection, for ``/healthz`` (``handler`` is None over HTTP)."""

    def __init__(self) -> None:
        self.handler: AsyncSocketModeHandler | None = None

    async def problem(self) -> str | None:
        """Why no click can reach this worker now, or None."""
        if self.handler is None:
            return None
        return None if await self.handler.client.is_connected() else "disconnected"


_SOCKET = web.AppKey("socket", SocketState)


async def open_socket_mode(bolt: AsyncApp, app_token: str) -> AsyncSocketModeHandler:
    """A Socket Mode handler whose first WebSocket URL Slack already granted.

    slack_sdk retries a refused ``apps.connections.open`` forever, a few
    seconds apart, and the worker would wait at start for a connection that
    never comes: ask once here, and raise ``SocketModeRefused`` when Slack
    refuses the token (a bad, revoked or wrong kind of token), so ``serve``
    exits with one clear line instead."""
    try:
        opened = await bolt.client.apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        if error not in TOKEN_REFUSED:
            # Slack is down or busy (a 5xx, ratelimited, an HTML error page): not the
            # token's fault. slack_sdk's own loop keeps asking until Slack is back.
            log.warning("Socket Mode: Slack answered %s; connecting when it can", error or "an error")
            return AsyncSocketModeHandler(bolt, app_token)
        raise SocketModeRefused(
            f"Slack refused SLACK_APP_TOKEN ({error}): give the app-level token (xapp-…) "
            "with the connections:write scope, from the app's Basic Information page"
        ) from None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        log.warning("Socket Mode: Slack unreachable (%s); connecting when it can", type(exc).__name__)
        return AsyncSocketModeHandler(bolt, app_token)
    handler = AsyncSocketModeHandler(bolt, app_token)
    handler.client.wss_uri = opened["url"]
    return handler


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


def hangup_handler(app: web.Application) -> Callable[[], None]:
    """What SIGHUP calls in a worker: reload the policy file (validated first; an invalid one changes nothing)."""
    return app[POLICY].hangup


def create_app(
    settings: Settings,
    *,
    consumer: str | None = None,
    redis: Redis | None = None,
    slack_first_wait: float = FIRST_ANSWER_WAIT,
) -> web.Application:
    """One bot worker: Slack endpoint, health check, job worker, Socket Mode if configured.

    ``redis`` replaces the connection ``REDIS_URL`` names (the demo's in-process
    store); the app closes it when it stops either way. ``slack_first_wait``
    is how long start-up waits for ``auth.test`` (the installation) before
    serving; the demo, whose Slack is this very app, waits for nothing."""
    needed = serve_settings_required(settings)
    settings.require(*(name for name in needed if redis is None or name != "redis_url"))
    # Every reader below asks the holder for the policy in force when it needs it: a reload
    # (SIGHUP, or the file changed) applies to the next request, click or budget day.
    policies = PolicyHolder(settings.approval_policy)
    if redis is None:
        connections = settings.redis_max_connections or WORKER_CONNECTIONS
        redis = connect(settings.redis_url, name=WORKER_CLIENT_NAME, max_connections=connections)
    policies.audit = AuditLog(redis)
    store = RequestStore(redis, today=lambda now: policies.current.today(now))
    worker = consumer or _consumer_name()
    queue = JobQueue(redis, worker, retry_after=settings.job_retry_after)
    # Every line this worker logs names it: its loops start in this context, and
    # each HTTP request runs in it (_tag_worker). Several workers may share a process.
    worker_context = logs.context_with(worker=worker)
    budget = SlackBudget(redis, scale=settings.slack_rate_scale)
    interactive, background = interactive_client(settings, budget), background_client(settings, budget=budget)
    bolt = build_app(settings, interactive, store, queue, policies)
    trust = TrustedOrgs(policies.current.trusted_teams)
    policies.on_change(lambda policy: trust.trust(policy.trusted_teams))
    refuse_other_orgs(bolt, trust, queue)
    answer_failures(bolt)
    jobs = SlackJobWorker(
        store,
        queue,
        background,
        policy=policies,
        default_channel=settings.approval_channel,
        sweep_interval=settings.sweep_interval,
        orgs=trust,
    )

    app = web.Application(client_max_size=settings.http_max_body, middlewares=[_tag_worker(worker)])
    app[_BOLT] = bolt
    app[_REDIS] = redis
    app[_JOBS] = jobs
    app[POLICY] = policies
    app[_SOCKET] = socket_state = SocketState()
    app[_TRUST] = trust
    app.router.add_get(HEALTHZ_PATH, _healthz)
    app.router.add_get(READYZ_PATH, _readyz)
    app.router.add_get(METRICS_PATH, _metrics)
    signed = SignedRequests(redis)
    if settings.slack_app_token is None:
        verifier = SignatureVerifier(settings.slack_signing_secret.get_secret_value())
        edge = SlackEdge(bolt, verifier, signed, body_timeout=settings.http_body_timeout)
        app.router.add_post(SLACK_EVENTS_PATH, edge.handle)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        async with keep_alive(interactive, background):
            socket_mode = None
            if settings.slack_app_token is not None:
                # First, before anything starts that would need stopping: a refused
                # token ends the worker at once.
                try:
                    socket_mode = await open_socket_mode(bolt, settings.slack_app_token.get_secret_value())
                except SocketModeRefused:
                    await redis.aclose()
                    raise
            # Not a click: the background client, which waits its turn in the budget.
            learning = asyncio.create_task(
                trust.learn(background), name="installation", context=worker_context
            )
            # Slack answers at once when it is up: wait for it, so the first clicks are not refused.
            if slack_first_wait > 0:
                await asyncio.wait([learning], timeout=slack_first_wait)

            async def watch_policy() -> None:
                # One os.stat a sweep interval; also records a version Redis could not audit yet.
                await policies.check()
                await asyncio.sleep(settings.sweep_interval)

            async def start_loops() -> None:
                await jobs.start()
                # The jobs' supervisor: a failing watch shows in /healthz with the other loops.
                jobs.loops.start(POLICY_WATCH_LOOP, watch_policy)

            await asyncio.create_task(start_loops(), context=worker_context)
            if socket_mode is not None:
                await asyncio.create_task(socket_mode.connect_async(), context=worker_context)
                socket_state.handler = socket_mode
            log.info("worker %s started", worker, extra=logs.tagged(logs.Event.WORKER_STARTED, worker=worker))
            try:
                yield
            finally:
                await stop([learning])
                socket_state.handler = None
                if socket_mode is not None:
                    await socket_mode.close_async()
                await jobs.close(grace=JOB_DRAIN)
                await policies.aclose()
                # Last before the client: the store's and the replay check's batches
                # run in tasks of their own that cancelling jobs or requests does not
                # stop, and one still running would reconnect the closed pool.
                await store.aclose()
                await signed.aclose()
                await budget.aclose()
                await redis.aclose()

    app.cleanup_ctx.append(lifecycle)
    return app


def _tag_worker(worker: str) -> Middleware:
    """Middleware: every line logged while handling a request names this worker."""

    @web.middleware
    async def tag(request: web.Request, handler: Handler) -> web.StreamResponse:
        with logs.log_context(worker=worker):
            return await handler(request)

    return tag


def _consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


HEALTH_PING_TIMEOUT = 2.0
"""Seconds ``/healthz`` waits for Redis's PING (load balancers give up after a few)."""


async def _problems(request: web.Request) -> dict[str, object]:
    """What stops this worker from working now (empty when nothing does)."""
    problems: dict[str, object] = {}
    try:
        async with asyncio.timeout(HEALTH_PING_TIMEOUT):
            await request.app[_REDIS].ping()
    except (RedisError, OSError, TimeoutError) as exc:
        problems["redis"] = describe(exc)
    loops = request.app[_JOBS].health()
    if loops:
        problems["loops"] = loops
    socket_problem = await request.app[_SOCKET].problem()
    if socket_problem is not None:
        problems["socket_mode"] = socket_problem
    return problems


async def _readyz(request: web.Request) -> web.Response:
    """200 only when this worker should get traffic: Redis answers, every loop runs, and Slack's
    ``auth.test`` has passed since it started (until then it refuses every click: whose
    workspace it serves is not known yet). 503 naming what is missing otherwise."""
    problems = await _problems(request)
    if request.app[_TRUST].installation is None:
        problems["slack"] = "auth.test has not passed yet"
    if problems:
        return web.json_response({"ready": False, **problems}, status=503)
    return web.json_response({"ready": True})


async def _metrics(request: web.Request) -> web.Response:
    """Prometheus's text format: this process's figures and the shared ones read from Redis (``bot.metrics``)."""
    body = await metrics.exposition(request.app[_REDIS])
    return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})


async def _healthz(request: web.Request) -> web.Response:
    """200 ``{"ok": true}`` while this worker can work; 503 naming what stops it.

    In Socket Mode the connection is reported too (``"socket_mode"``): while
    it is down no click reaches this worker, so it is a 503.

    PING alone is not the truth: a replica left behind by a failover, or a
    primary short of replicas, answers PING and refuses every write, so the
    job loops report their own state too (no Redis call: they record it as
    they run)."""
    problems = await _problems(request)
    if problems:
        return web.json_response({"ok": False, **problems}, status=503)
    if request.app[_SOCKET].handler is not None:
        return web.json_response({"ok": True, "socket_mode": "connected"})
    return web.json_response({"ok": True})
