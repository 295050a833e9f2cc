"""Who is in which user group, and what people are called: Slack look-ups cached in Redis.

Group membership is read on every click (and passed to the DECIDE script,
``approvals.groups``), so it must be in Redis before anyone clicks: the
worker that posts a request warms the cache of its approver groups
(``usergroups.users.list`` is Tier 2, ~20 calls a minute). A click by
someone the cache does not list refreshes the group at most once per
``USERGROUP_REFRESH_GAP``, with a short deadline, since a click must be
answered within 3 seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from ..approvals import keys
from ..approvals.codec import text
from ..redis_client import RedisClient
from .errors import logged

log = logging.getLogger(__name__)

CLICK_LOOKUP_SECONDS = 1.5
"""Longest a Slack look-up may take while a person waits for their click to land."""


class Directory:
    def __init__(self, redis: RedisClient, client: AsyncWebClient) -> None:
        self.redis = redis
        self.client = client

    async def warm(self, groups: Iterable[str]) -> None:
        """Cache the members of every group not cached yet (off the click path)."""
        for group in dict.fromkeys(groups):
            if not await self.redis.exists(keys.usergroup(group)):
                await self._load(group)

    async def refresh(self, groups: Iterable[str]) -> bool:
        """Re-read groups a click missed in, unless read very recently; whether any was re-read."""
        refreshed = False
        try:
            async with asyncio.timeout(CLICK_LOOKUP_SECONDS):
                for group in dict.fromkeys(groups):
                    fresh = await self.redis.set(
                        keys.usergroup_refreshed(group), "1", nx=True, ex=keys.USERGROUP_REFRESH_GAP
                    )
                    cached = await self.redis.exists(keys.usergroup(group))
                    if fresh or not cached:
                        refreshed |= await self._load(group)
        except TimeoutError:
            log.warning(
                "user group look-up took longer than %.1fs; the click is refused", CLICK_LOOKUP_SECONDS
            )
        return refreshed

    async def _load(self, group: str) -> bool:
        try:
            response = await self.client.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            log.warning(
                "members of user group %s unavailable: %s",
                group,
                exc.response.get("error"),
                extra=logged(exc, group=group),
            )
            return False
        users: list[object] = response.get("users", [])
        members = [m for m in users if isinstance(m, str)]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.usergroup(group))
            pipe.sadd(keys.usergroup(group), keys.USERGROUP_SENTINEL, *members)
            pipe.expire(keys.usergroup(group), keys.USERGROUP_TTL)
            await pipe.execute()
        return True

    async def name(self, user: str) -> str:
        """A user's display name (cached), or "" if Slack cannot say."""
        cached = await self.redis.hget(keys.USER_NAMES, user)
        if cached is not None:
            return text(cached)
        try:
            async with asyncio.timeout(CLICK_LOOKUP_SECONDS):
                response = await self.client.users_info(user=user)
        except (SlackApiError, TimeoutError, OSError) as exc:
            log.info("no name for %s: %s", user, exc)
            return ""
        profile = response["user"].get("profile") or {}
        found = profile.get("display_name") or response["user"].get("name") or profile.get("real_name") or ""
        if found:
            await self.redis.hset(keys.USER_NAMES, user, found)
        return found
