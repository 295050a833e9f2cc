"""The Bolt app: listeners wired to the domain, and the Slack Web API clients."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
from slack_bolt.async_app import AsyncApp
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
from ..approvals.queue import JobQueue
from ..approvals.store import RequestStore
from ..settings import Settings
from .deciding import Decider
from .directory import Directory
from .listeners import actions, commands, events, views


def interactive_client(settings: Settings) -> AsyncWebClient:
    """For listeners: never sleeps on a 429, because a click must be acked within 3 s."""
    return AsyncWebClient(
        token=_token(settings),
        base_url=settings.slack_api_url,
        retry_handlers=[AsyncConnectionErrorRetryHandler()],
    )


def background_client(settings: Settings, *, backoff: float = 0.5) -> AsyncWebClient:
    """For the job worker: waits out rate limits (Retry-After) and retries 5xx
    and lost connections after ``backoff``, then twice and four times as long."""
    interval = BackoffRetryIntervalCalculator(backoff_factor=backoff)
    return AsyncWebClient(
        token=_token(settings),
        base_url=settings.slack_api_url,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2, interval_calculator=interval),
            AsyncRateLimitErrorRetryHandler(max_retry_count=5),
            AsyncServerErrorRetryHandler(max_retry_count=3, interval_calculator=interval),
        ],
    )


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
    settings: Settings, client: AsyncWebClient, store: RequestStore, queue: JobQueue, policy: Policy
) -> AsyncApp:
    socket_mode = settings.slack_app_token is not None
    app = AsyncApp(
        client=client,
        signing_secret=_secret(settings),
        # Listeners run before Slack gets its HTTP response: a decision is one
        # Redis call, so this is both faster (no ack polling) and safer.
        process_before_response=True,
        # Socket Mode messages are not signed; HTTP requests are checked in
        # web.py first and again here.
        request_verification_enabled=not socket_mode,
    )
    allowlist = TeamAllowList(store.redis)
    directory = Directory(store.redis, client)
    decider = Decider(store, directory)
    actions.register(app, store, decider, queue, allowlist, policy)
    views.register(app, store, decider)
    commands.register(app, store, allowlist)
    events.register(app, store, directory)
    return app


def _token(settings: Settings) -> str:
    return settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""


def _secret(settings: Settings) -> str:
    return settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
