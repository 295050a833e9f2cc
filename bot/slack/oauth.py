"""OAuth mode: Slack's install flow (``/slack/install``, ``/slack/oauth_redirect``) through Bolt's OAuth support.

Bolt's ``AsyncOAuthFlow`` does the work: ``/slack/install`` issues a state
(``RedisOAuthStateStore``), sets it in a cookie and redirects to Slack's
authorize page; Slack sends the browser back to ``/slack/oauth_redirect`` with
a code, which ``oauth.v2.access`` exchanges for the installation's bot token,
kept in ``RedisInstallationStore``. An installation for a workspace or
organisation ``SLACK_WORKSPACES`` does not name is refused and not kept.
"""

from __future__ import annotations

import base64
import logging
from typing import Any
from urllib.parse import urljoin

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.error import BoltError
from slack_bolt.oauth.async_callback_options import AsyncCallbackOptions, AsyncFailureArgs, AsyncSuccessArgs
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from ..approvals import keys
from ..settings import Settings
from .identity import org_workspaces
from .oauth_state import RedisOAuthStateStore
from .workspaces import Workspaces

log = logging.getLogger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"

BOT_SCOPES = (
    "chat:write",
    "channels:read",
    "groups:read",
    "channels:history",
    "groups:history",
    "users:read",
    "usergroups:read",
    "commands",
)
"""The bot scopes an install asks for: ``manifest.yml``'s, which say why each is needed."""


class InstallRefused(BoltError):
    """An installation for a workspace or organisation the workers do not serve."""


def authorize_url(api_url: str) -> str:
    """Slack's authorize page, next to its Web API (``https://slack.com/oauth/v2/authorize``)."""
    return urljoin(api_url, "../oauth/v2/authorize")


class _ServedOnly(AsyncOAuthFlow):
    """Bolt's flow, keeping only installations where ``workspaces`` has a channel."""

    def __init__(
        self, *, workspaces: Workspaces, client: AsyncWebClient, settings: AsyncOAuthSettings
    ) -> None:
        super().__init__(client=client, settings=settings)
        self.workspaces = workspaces

    async def store_installation(self, request: AsyncBoltRequest, installation: Installation) -> None:
        """Keep ``installation`` if it is served here (``InstallRefused`` if not; a ``BoltError`` is
        answered by Bolt's failure page) and, when org-wide, the workspaces it was granted."""
        org_wide = bool(installation.is_enterprise_install)
        if not self.workspaces.serves(installation.enterprise_id, installation.team_id, org_wide):
            where = installation.enterprise_id if org_wide else installation.team_id
            log.warning("install refused: %s is not in SLACK_WORKSPACES", where)
            raise InstallRefused(f"{where} is not served here")
        teams = await self._granted(installation) if org_wide else None
        await super().store_installation(request, installation)
        if teams is not None and installation.enterprise_id:
            await self.workspaces.store.save_org_workspaces(installation.enterprise_id, teams)

    async def _granted(self, installation: Installation) -> frozenset[str]:
        """Its clicks come from any of its workspaces (``team: null`` in the payload): which ones,
        only auth.teams.list says. A workspace added later needs the app installed again."""
        org = AsyncWebClient(token=installation.bot_token, base_url=self.client.base_url)
        try:
            return await org_workspaces(org)
        except (SlackApiError, aiohttp.ClientError, OSError) as exc:
            log.warning("org-wide install not kept: auth.teams.list failed (%s)", type(exc).__name__)
            raise BoltError("the organisation's workspaces could not be listed") from exc


async def _failure(args: AsyncFailureArgs) -> BoltResponse:
    if isinstance(args.error, InstallRefused):
        return BoltResponse(status=403, body="This workspace is not served by these approvals workers.")
    return await args.default.failure(args)


async def _success(args: AsyncSuccessArgs) -> BoltResponse:
    return await args.default.success(args)  # Bolt's own page (AsyncCallbackOptions needs both)


class _AppCredentialsClient(AsyncWebClient):
    """Sends the app's credentials (``oauth.v2.access``) as an ``Authorization: Basic`` header it
    encodes itself: slack_sdk passes them to aiohttp's ``BasicAuth``, deprecated in aiohttp 3.12."""

    async def api_call(
        self, api_method: str, *, auth: dict | None = None, headers: dict | None = None, **kwargs: Any
    ) -> AsyncSlackResponse:
        if auth is not None:
            basic = base64.b64encode(f"{auth['client_id']}:{auth['client_secret']}".encode()).decode()
            headers = {**(headers or {}), "Authorization": f"Basic {basic}"}
        return await super().api_call(api_method, headers=headers, **kwargs)


def install_flow(settings: Settings, workspaces: Workspaces) -> AsyncOAuthFlow:
    """The install flow, with installations and states in the Redis ``workspaces`` reads;
    ``oauth.v2.access`` is asked at ``SLACK_API_URL``."""
    assert settings.slack_client_id is not None and settings.slack_client_secret is not None
    oauth = AsyncOAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret.get_secret_value(),
        scopes=list(BOT_SCOPES),
        redirect_uri=settings.slack_redirect_uri,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        # Straight to Slack: a page of our own with one link would add a click and nothing else.
        install_page_rendering_enabled=False,
        authorization_url=authorize_url(settings.slack_api_url),
        installation_store=workspaces.store,
        installation_store_bot_only=True,
        state_store=RedisOAuthStateStore(workspaces.store.redis),
        state_expiration_seconds=keys.OAUTH_STATE_TTL,
        callback_options=AsyncCallbackOptions(success=_success, failure=_failure),
    )
    return _ServedOnly(
        workspaces=workspaces, client=_AppCredentialsClient(base_url=settings.slack_api_url), settings=oauth
    )


def add_install_routes(app: web.Application, flow: AsyncOAuthFlow) -> None:
    """Serve ``GET /slack/install`` and ``GET /slack/oauth_redirect`` with ``flow``."""

    async def install(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await flow.handle_installation(await to_bolt_request(request)))

    async def redirect(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await flow.handle_callback(await to_bolt_request(request)))

    app.router.add_get(INSTALL_PATH, install)
    app.router.add_get(REDIRECT_PATH, redirect)
