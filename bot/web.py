"""The worker's aiohttp application: ``POST /slack/events``, ``GET /healthz``, ``GET /readyz`` and ``GET /metrics``."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextvars import Context
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler
from redis.asyncio.cluster import RedisCluster
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from . import logs
from .approvals.audit import AuditLog
from .approvals.policy import Policy
from .approvals.policy_reload import PolicyHolder
from .approvals.queue import JobQueue
from .approvals.store import RequestStore
from .edge import SlackEdge, answer_failures
from .health import Health
from .redis_client import WORKER_CLIENT_NAME, WORKER_CONNECTIONS, RedisClient, connect
from .settings import Settings
from .slack.app import background_client, build_app, interactive_client, keep_alive
from .slack.budget import SlackBudget
from .slack.identity import FIRST_ANSWER_WAIT, TrustedOrgs, refuse_other_orgs
from .slack.installation_store import RedisInstallationStore
from .slack.jobs import SlackJobWorker
from .slack.oauth import add_install_routes, install_flow
from .slack.replays import SignedRequests
from .slack.workspaces import Workspaces
from .socket_mode import SocketModeRefused, open_socket_mode
from .tasks import stop

log = logging.getLogger(__name__)

SLACK_EVENTS_PATH = "/slack/events"
HEALTHZ_PATH = "/healthz"
READYZ_PATH = "/readyz"
METRICS_PATH = "/metrics"
POLICY_WATCH_LOOP = "policy-watch"

JOB_DRAIN = 10.0
"""Seconds a stopping worker lets its running jobs finish before giving the rest back."""

POLICY = web.AppKey("policy", PolicyHolder)
"""The worker's policy in force; ``serve`` reloads it on SIGHUP (``POLICY.hangup``)."""


def serve_settings_required(settings: Settings) -> tuple[str, ...]:
    """The settings ``serve`` cannot run without (OAuth mode: the workspaces' tokens come from installs)."""
    needed = (
        ["redis_url", "slack_workspaces"]
        if settings.oauth
        else ["redis_url", "slack_bot_token", "approval_channel"]
    )
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
    redis: RedisClient | None = None,
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
        assert settings.redis_url is not None
        connections = settings.redis_max_connections or WORKER_CONNECTIONS
        redis = connect(
            settings.redis_url,
            name=WORKER_CLIENT_NAME,
            max_connections=connections,
            topology=settings.redis_topology(),
        )
    policies.audit = AuditLog(redis)
    store = RequestStore(redis, today=lambda now: policies.current.today(now))
    worker = consumer or _consumer_name()
    queue = JobQueue(redis, worker, retry_after=settings.job_retry_after)
    # Every line this worker logs names it: its loops start in this context, and
    # each HTTP request runs in it (_tag_worker). Several workers may share a process.
    worker_context = logs.context_with(worker=worker)
    budget = SlackBudget(redis, scale=settings.slack_rate_scale)
    workspaces = Workspaces(settings, RedisInstallationStore(redis)) if settings.oauth else None
    interactive = interactive_client(settings, budget, workspaces=workspaces)
    background = background_client(settings, budget=budget, workspaces=workspaces)
    flow = install_flow(settings, workspaces) if workspaces is not None else None
    oauth = (flow, workspaces) if flow is not None and workspaces is not None else None
    bolt = build_app(settings, interactive, store, queue, policies, oauth=oauth)
    trust = TrustedOrgs(policies.current.trusted_teams, served=workspaces.channels if workspaces else ())
    policies.on_change(lambda policy: trust.trust(policy.trusted_teams))
    refuse_other_orgs(bolt, trust, queue, also=workspaces.org_member if workspaces else None)
    answer_failures(bolt)
    jobs = SlackJobWorker(
        store,
        queue,
        background,
        policy=policies,
        default_channel=settings.approval_channel or "",
        workspaces=workspaces,
        sweep_interval=settings.sweep_interval,
        orgs=trust,
    )

    app = web.Application(client_max_size=settings.http_max_body, middlewares=[_TagWorker(worker)])
    app[POLICY] = policies
    health = Health(redis, jobs, trust)
    app.router.add_get(HEALTHZ_PATH, health.healthz)
    app.router.add_get(READYZ_PATH, health.readyz)
    app.router.add_get(METRICS_PATH, health.metrics)
    if flow is not None:
        add_install_routes(app, flow)
    signed = SignedRequests(redis)
    if settings.slack_app_token is None:
        assert settings.slack_signing_secret is not None
        verifier = SignatureVerifier(settings.slack_signing_secret.get_secret_value())
        edge = SlackEdge(bolt, verifier, signed, body_timeout=settings.http_body_timeout)
        app.router.add_post(SLACK_EVENTS_PATH, edge.handle)
    life = _WorkerLife(
        settings=settings,
        worker=worker,
        worker_context=worker_context,
        redis=redis,
        policies=policies,
        store=store,
        budget=budget,
        signed=signed,
        interactive=interactive,
        background=background,
        bolt=bolt,
        trust=trust,
        jobs=jobs,
        health=health,
        slack_first_wait=slack_first_wait,
        team_policies=list(workspaces.policies.values()) if workspaces else [],
    )
    app.cleanup_ctx.append(life.lifecycle)
    return app


@dataclass
class _WorkerLife:
    """A worker's start and stop, in order: aiohttp runs ``lifecycle`` around serving."""

    settings: Settings
    worker: str
    worker_context: Context
    redis: RedisClient
    policies: PolicyHolder
    store: RequestStore
    budget: SlackBudget
    signed: SignedRequests
    interactive: AsyncWebClient
    background: AsyncWebClient
    bolt: AsyncApp
    trust: TrustedOrgs
    jobs: SlackJobWorker
    health: Health
    slack_first_wait: float
    team_policies: list[PolicyHolder]
    """OAuth mode: the workspaces' own policies, watched and closed like ``policies``."""

    async def lifecycle(self, _app: web.Application) -> AsyncIterator[None]:
        async with keep_alive(self.interactive, self.background):
            socket_mode = None
            if self.settings.slack_app_token is not None:
                # First, before anything starts that would need stopping: a refused
                # token ends the worker at once.
                try:
                    socket_mode = await open_socket_mode(
                        self.bolt, self.settings.slack_app_token.get_secret_value()
                    )
                except SocketModeRefused:
                    await self.redis.aclose()
                    raise
            # Not a click: the background client, which waits its turn in the budget. OAuth
            # mode has no one installation to learn: each request is authorized by its own.
            learning = asyncio.create_task(
                self.trust.learn(self.background) if not self.settings.oauth else asyncio.sleep(0),
                name="installation",
                context=self.worker_context,
            )
            # Slack answers at once when it is up: wait for it, so the first clicks are not refused.
            if self.slack_first_wait > 0:
                await asyncio.wait([learning], timeout=self.slack_first_wait)
            await asyncio.create_task(self.start_loops(), context=self.worker_context)
            if socket_mode is not None:
                await asyncio.create_task(socket_mode.connect_async(), context=self.worker_context)
                self.health.socket_mode = socket_mode
            worker = self.worker
            log.info("worker %s started", worker, extra=logs.tagged(logs.Event.WORKER_STARTED, worker=worker))
            try:
                yield
            finally:
                await stop([learning])
                self.health.socket_mode = None
                if socket_mode is not None:
                    await socket_mode.close_async()
                await self.jobs.close(grace=JOB_DRAIN)
                for holder in [self.policies, *self.team_policies]:
                    await holder.aclose()
                # Last before the client: the store's and the replay check's batches
                # run in tasks of their own that cancelling jobs or requests does not
                # stop, and one still running would reconnect the closed pool.
                await self.store.aclose()
                await self.signed.aclose()
                await self.budget.aclose()
                await self.redis.aclose()

    async def start_loops(self) -> None:
        await self.carry_legacy_spend()
        await self.jobs.start()
        # The jobs' supervisor: a failing watch shows in /healthz with the other loops.
        self.jobs.loops.start(POLICY_WATCH_LOOP, self.watch_policy)

    async def carry_legacy_spend(self) -> None:
        """On a single primary, today's spend counted by a version before the tagged counters is
        added to the new ones, once: the upgrade day's budgets do not start again from zero."""
        if isinstance(self.redis, RedisCluster):
            return  # no cluster ran those versions, and their counters are in other slots
        now = time.time()
        try:
            for holder in [self.policies, *self.team_policies]:
                policy = holder.current
                carried = await self.store.spend.carry_legacy(policy.route_names(), policy.today(now))
                for rule, amount in carried.items():
                    log.info("route %s: $%s spent today before the upgrade carried over", rule, amount)
        except Exception:
            # Not carried (nothing is marked done): the next worker to start tries again.
            log.exception("today's spend from before the upgrade could not be carried over")

    async def watch_policy(self) -> None:
        # One os.stat a sweep interval; also records a version Redis could not audit yet.
        for holder in [self.policies, *self.team_policies]:
            await holder.check()
        await asyncio.sleep(self.settings.sweep_interval)


class _TagWorker:
    """Middleware: every line logged while handling a request names this worker."""

    __middleware_version__ = 1
    """What ``@web.middleware`` sets: aiohttp calls a middleware without it the old way."""

    def __init__(self, worker: str) -> None:
        self.worker = worker

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        with logs.log_context(worker=self.worker):
            return await handler(request)


def _consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
