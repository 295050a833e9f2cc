"""OAuth ``state`` values in Redis: the ``AsyncOAuthStateStore`` Bolt's OAuth flow issues and consumes.

The state ties Slack's redirect back (``/slack/oauth_redirect``) to the browser
that started the install at ``/slack/install`` on any worker: Bolt also sets it
in a cookie and compares the two. Each state is good once (``GETDEL``, atomic
across workers) and for ``keys.OAUTH_STATE_TTL`` seconds.
"""

from __future__ import annotations

import logging
import secrets

from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from ..approvals import keys
from ..redis_client import RedisClient

log = logging.getLogger(__name__)


class RedisOAuthStateStore(AsyncOAuthStateStore):
    """One-use, expiring OAuth states shared by every worker."""

    def __init__(self, redis: RedisClient, *, expiration_seconds: int = keys.OAUTH_STATE_TTL) -> None:
        self.redis = redis
        self.expiration_seconds = expiration_seconds

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: object, **kwargs: object) -> str:
        state = secrets.token_urlsafe(32)
        await self.redis.set(keys.oauth_state(state), "1", ex=self.expiration_seconds)
        return state

    async def async_consume(self, state: str) -> bool:
        """Whether ``state`` was issued here, has not expired and was not used yet (it is used now)."""
        if not state:
            return False
        used = await self.redis.getdel(keys.oauth_state(state))
        if used is None:
            log.warning("OAuth state refused: unknown, expired or already used")
        return used is not None
