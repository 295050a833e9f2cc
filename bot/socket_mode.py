"""Socket Mode: the worker's first WebSocket URL, asked for once so a refused token stops ``serve``."""

from __future__ import annotations

import logging

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)


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
