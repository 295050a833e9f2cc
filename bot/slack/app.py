"""The Bolt app: listeners wired to the domain, and the Slack Web API clients."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.middleware.authorization.async_single_team_authorization import AsyncSingleTeamAuthorization
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import (
    BackoffRetryIntervalCalculator,
)
from slack_sdk.web.async_client import AsyncWebClient

from ..approvals.allowlist import TeamAllowList
from ..approvals.policy import Policy
from ..approvals.policy_reload import PolicyHolder
from ..approvals.queue import JobQueue
from ..approvals.store import RequestStore
from ..settings import Settings
from .budget import SlackBudget
from .budgeted_client import BudgetedClient
from .deciding import Decider
from .directory import Directory
from .identity import installation_of
from .listeners import actions, commands, events, modal_clicks, views
from .workspaces import WORKSPACE, WorkspaceClient, Workspaces


def interactive_client(
    settings: Settings, budget: SlackBudget | None = None, *, workspaces: Workspaces | None = None
) -> AsyncWebClient:
    """For listeners: never waits on the budget and never sleeps on a 429, because a
    click must be acked within 3 s; its calls are counted in ``budget`` afterwards.
    With ``workspaces`` (OAuth mode) each call carries its workspace's token (``WorkspaceClient``)."""
    return _client(workspaces)(
        token=_token(settings),
        base_url=settings.slack_api_url,
        retry_handlers=[AsyncConnectionErrorRetryHandler()],
        budget=budget,
        interactive=True,
    )


def background_client(
    settings: Settings,
    *,
    backoff: float = 0.5,
    budget: SlackBudget | None = None,
    workspaces: Workspaces | None = None,
) -> AsyncWebClient:
    """For the job worker: each call waits for ``budget`` (Slack's rate limits, shared
    by every worker), and retries 5xx and lost connections after ``backoff``, then
    twice and four times as long. A 429 pauses the method for every worker
    (``BudgetedClient``); without a budget the client itself waits out ``Retry-After``."""
    interval = BackoffRetryIntervalCalculator(backoff_factor=backoff)
    handlers = [
        AsyncConnectionErrorRetryHandler(max_retry_count=2, interval_calculator=interval),
        AsyncServerErrorRetryHandler(max_retry_count=3, interval_calculator=interval),
    ]
    if budget is None:
        handlers.insert(1, AsyncRateLimitErrorRetryHandler(max_retry_count=5))
    return _client(workspaces)(
        token=_token(settings), base_url=settings.slack_api_url, retry_handlers=handlers, budget=budget
    )


def _client(workspaces: Workspaces | None) -> Callable[..., BudgetedClient]:
    """A ``BudgetedClient`` maker; in OAuth mode one whose calls carry the job's or click's workspace token."""
    if workspaces is None:
        return BudgetedClient
    return functools.partial(WorkspaceClient, workspaces=workspaces)


@contextlib.asynccontextmanager
async def keep_alive(*clients: AsyncWebClient) -> AsyncIterator[None]:
    """One pooled, kept-alive HTTP session for the clients' Slack calls while the worker runs.

    Without a session slack_sdk opens and closes one per API call: a new TCP
    and TLS connection to Slack each time, which bounded a worker to about
    half the decisions a second it manages with connections reused.
    """
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=max(c.timeout for c in clients)))
    for client in clients:
        client.session = session
    try:
        yield
    finally:
        for client in clients:
            client.session = None
        await session.close()


def build_app(
    settings: Settings,
    client: AsyncWebClient,
    store: RequestStore,
    queue: JobQueue,
    policy: Policy | PolicyHolder,
    *,
    oauth: tuple[AsyncOAuthFlow, Workspaces] | None = None,
) -> AsyncApp:
    """The Bolt app; with ``oauth`` (OAuth mode) each request is authorized by its workspace's installation."""
    socket_mode = settings.slack_app_token is not None
    app = AsyncApp(
        client=client,
        oauth_flow=oauth[0] if oauth else None,
        installation_store_bot_only=True if oauth else None,
        signing_secret=_secret(settings),
        # Listeners run before Slack gets its HTTP response: a decision is one
        # Redis call, so this is both faster (no ack polling) and safer.
        process_before_response=True,
        # Socket Mode messages are not signed; HTTP requests are checked in
        # web.py first and again here.
        request_verification_enabled=not socket_mode,
    )
    _one_auth_test(app)
    if isinstance(client, BudgetedClient) and client.budget is not None:
        _count_listener_calls(app, client.budget)
    if oauth is not None:
        app.middleware(_in_workspace)
        _forget_lost_installations(app)
        _follow_org_grants(app, oauth[1])
    allowlist = TeamAllowList(store.redis)
    directory = Directory(store.redis, client)
    decider = Decider(store, directory, oauth[1] if oauth else None, queue)
    actions.register(app, store, decider, queue, allowlist, policy)
    modal_clicks.register(app, store, decider, queue)
    views.register(app, store, decider)
    commands.register(app, store, allowlist)
    events.register(app, store, directory, oauth[1] if oauth else None)
    return app


def _forget_lost_installations(app: AsyncApp) -> None:
    """OAuth mode: an uninstall or a revoked token deletes what the installation store holds for
    it (Bolt's own listeners), then is logged as in single-token mode. Registered before
    ``events.register``'s listeners, as Bolt runs only the first that matches an event."""
    uninstalled = app.default_app_uninstalled_event_listener()
    revoked = app.default_tokens_revoked_event_listener()

    async def on_uninstalled(event: dict[str, Any], context: AsyncBoltContext) -> None:
        await uninstalled(context=context)
        await events.access_lost(event)

    async def on_revoked(event: dict[str, Any], context: AsyncBoltContext) -> None:
        await revoked(event=event, context=context)
        await events.access_lost(event)

    app.event("app_uninstalled")(on_uninstalled)
    app.event("tokens_revoked")(on_revoked)


def _follow_org_grants(app: AsyncApp, workspaces: Workspaces) -> None:
    """OAuth mode: an org-wide install's workspaces as Slack grants and revokes them, so that the
    people of a workspace taken away from the install decide none of its requests from then on."""

    async def changed(body: dict[str, Any], event: dict[str, Any]) -> None:
        organisation = installation_of(body)  # the org-wide install the event was delivered to
        teams = [team for team in event.get("team_ids") or [] if isinstance(team, str)]
        if organisation.startswith("E"):
            granted = event.get("type") == "team_access_granted"
            await workspaces.store.grant_org_workspaces(organisation, teams, granted=granted)

    app.event("team_access_granted")(changed)
    app.event("team_access_revoked")(changed)


async def _in_workspace(body: dict[str, Any], next: Callable[[], Awaitable[None]]) -> None:
    """OAuth mode: the listeners' own client calls (``WorkspaceClient``) carry the token of the
    installation the payload came through, as Bolt's per-request client does."""
    # Set, not scoped: Bolt runs the listeners after the middleware returns, in the same task
    # (process_before_response), and each Slack request sets it anew before its listeners run.
    WORKSPACE.set(installation_of(body))
    await next()


def _one_auth_test(app: AsyncApp) -> None:
    """Bolt's single-workspace authorization calls ``auth.test`` for every request until
    it holds an answer: the first burst of clicks after a start would each call it,
    and draw 429s. The first request asks; the others wait for its answer."""
    # Bolt has no public handle on its authorization middleware.
    for middleware in getattr(app, "_async_middleware_list", []):
        if isinstance(middleware, AsyncSingleTeamAuthorization):
            middleware.async_process = _SingleFlightAuthTest(middleware).async_process  # type: ignore[method-assign]


class _SingleFlightAuthTest:
    """Bolt's authorization middleware, with one ``auth.test`` in flight at a time."""

    def __init__(self, auth: AsyncSingleTeamAuthorization) -> None:
        self.auth = auth
        self.process = auth.async_process
        self.lock = asyncio.Lock()

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        auth = self.auth
        if auth.auth_test_result is None and req.context.client is not None:
            async with self.lock:
                if auth.auth_test_result is None:
                    with contextlib.suppress(SlackApiError):  # Bolt asks again, and answers the error
                        auth.auth_test_result = await req.context.client.auth_test()
        return await self.process(req=req, resp=resp, next=next)


def _count_listener_calls(app: AsyncApp, budget: SlackBudget) -> None:
    """Listeners get the client Bolt makes for each request: swap in one that counts
    its calls in the shared budget (and, like Bolt's, carries the request's team)."""
    app.middleware(_ListenerClients(budget).budgeted_client)


class _ListenerClients:
    """A middleware that gives listeners a client counting its calls in ``budget``."""

    def __init__(self, budget: SlackBudget) -> None:
        self.budget = budget

    async def budgeted_client(self, context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:
        bolt = context.client
        if bolt is not None and not isinstance(bolt, BudgetedClient):
            context["client"] = BudgetedClient(
                token=bolt.token,
                base_url=bolt.base_url,
                timeout=bolt.timeout,
                ssl=bolt.ssl,
                proxy=bolt.proxy,
                session=bolt.session,
                trust_env_in_session=bolt.trust_env_in_session,
                headers=bolt.headers,
                team_id=context.team_id,
                logger=bolt.logger,
                retry_handlers=list(bolt.retry_handlers or []),
                budget=self.budget,
                interactive=True,
            )
        return await next()


def _token(settings: Settings) -> str | None:
    # None, not "", without a token (OAuth mode): Bolt would warn that a token is set and ignored.
    return settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None


def _secret(settings: Settings) -> str:
    return settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
