"""Events API: the app losing its access to the workspace."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

log = logging.getLogger(__name__)


def register(app: AsyncApp) -> None:
    @app.event("app_uninstalled")
    @app.event("tokens_revoked")
    async def access_lost(event: dict[str, Any]) -> None:
        # Nothing can be posted any more: every new request will be denied as
        # undeliverable. Operators need to see this in the logs at once.
        log.error("Slack %s: approval requests can no longer be posted; reinstall the app", event.get("type"))
