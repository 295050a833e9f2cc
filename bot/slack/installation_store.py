"""Slack installations in Redis: the ``AsyncInstallationStore`` Bolt's OAuth support reads and writes.

slack_sdk ships stores for files, SQL, S3 and SQLite, none for Redis; this one
follows their semantics (``slack_sdk.oauth.installation_store.file``): a
workspace's installation is found by its workspace, an org-wide install
(``is_enterprise_install``) by its organisation alone, and a lookup without a
user finds the latest installation. Two differences: a workspace install is
keyed by its workspace id alone (Slack's ``T…`` ids are unique, and the job
worker knows a request's workspace, not always its organisation), and a
workspace of an Enterprise Grid organisation with no install of its own is
served by the organisation's org-wide install, whichever workspace of the org
a request comes from.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation

from ..approvals import keys
from ..redis_client import RedisClient

log = logging.getLogger(__name__)

BOT, LATEST, USERS, TEAMS = "bot", "latest", "users", "teams"
"""The parts of one installation (``keys.installation``)."""


def _user(user_id: str) -> str:
    return f"user:{user_id}"


def _json(values: dict[str, Any]) -> str:
    # installed_at and the expiry times are datetimes: ISO text, which the models read back.
    return json.dumps(values, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))


class RedisInstallationStore(AsyncInstallationStore):
    """Installations and their bot tokens in Redis (keys under ``keys.INSTALL_PREFIX``).

    Tokens are secrets: they are stored, never logged (the log lines name the workspace only).
    """

    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_save(self, installation: Installation) -> None:
        """Keep ``installation`` as its workspace's latest (and its installer's), and its bot."""
        enterprise, team = _where(
            installation.enterprise_id, installation.team_id, installation.is_enterprise_install
        )
        data = _json(installation.to_dict_for_copying())
        # One slot (the installation's hash tag): written together or not at all.
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.installation(enterprise, team, LATEST), data)
            if installation.user_id:
                pipe.set(keys.installation(enterprise, team, _user(installation.user_id)), data)
                pipe.sadd(keys.installation(enterprise, team, USERS), installation.user_id)
            if installation.bot_token:
                pipe.set(
                    keys.installation(enterprise, team, BOT),
                    _json(installation.to_bot().to_dict_for_copying()),
                )
            await pipe.execute()
        log.info("installation saved: organisation %s, workspace %s", enterprise or "-", team or "-")

    async def async_save_bot(self, bot: Bot) -> None:
        enterprise, team = _where(bot.enterprise_id, bot.team_id, bot.is_enterprise_install)
        await self.redis.set(keys.installation(enterprise, team, BOT), _json(bot.to_dict_for_copying()))

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        """The bot of the workspace, else of its organisation's org-wide install."""
        for enterprise, team in _candidates(enterprise_id, team_id, is_enterprise_install):
            raw = cast(bytes | None, await self.redis.get(keys.installation(enterprise, team, BOT)))
            if raw is not None:
                return Bot(**json.loads(raw))
        return None

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        """The installation of ``user_id`` (the latest one without), with the latest bot token."""
        for enterprise, team in _candidates(enterprise_id, team_id, is_enterprise_install):
            part = _user(user_id) if user_id else LATEST
            raw, bot = cast(
                list[bytes | None],
                await self.redis.mget(
                    keys.installation(enterprise, team, part), keys.installation(enterprise, team, BOT)
                ),
            )
            if raw is None:
                continue
            installation = Installation(**json.loads(raw))
            if bot is not None:
                # The installer's record may predate a reinstall by someone else: the newest bot token wins.
                latest = Bot(**json.loads(bot))
                installation.bot_id, installation.bot_user_id = latest.bot_id, latest.bot_user_id
                installation.bot_token, installation.bot_scopes = latest.bot_token, latest.bot_scopes
                installation.bot_refresh_token = latest.bot_refresh_token
                installation.bot_token_expires_at = latest.bot_token_expires_at
            return installation
        return None

    async def save_org_workspaces(self, enterprise_id: str, teams: Iterable[str]) -> None:
        """The workspaces an org-wide install was granted (``auth.teams.list``), replacing those known."""
        key = keys.installation(enterprise_id, None, TEAMS)
        teams = list(teams)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if teams:
                pipe.sadd(key, *teams)
            await pipe.execute()

    async def grant_org_workspaces(self, enterprise_id: str, teams: Iterable[str], *, granted: bool) -> None:
        """Slack granted (or revoked) the org-wide install of ``enterprise_id`` these workspaces
        (``team_access_granted`` / ``team_access_revoked``). A grant to an install not kept is dropped."""
        key, teams = keys.installation(enterprise_id, None, TEAMS), list(teams)
        if not teams:
            return
        if not granted:
            await self.redis.srem(key, *teams)
        elif await self.redis.exists(keys.installation(enterprise_id, None, BOT)):
            await self.redis.sadd(key, *teams)
        log.info(
            "organisation %s %s workspaces %s", enterprise_id, "granted" if granted else "revoked", teams
        )

    async def in_organisation(self, team_id: str, enterprise_id: str) -> bool:
        """Whether the org-wide install of ``enterprise_id`` was granted workspace ``team_id``."""
        return bool(await self.redis.sismember(keys.installation(enterprise_id, None, TEAMS), team_id))

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        """Forget the bot of the workspace ``team_id``, or (without one) of the org-wide install."""
        await self.redis.delete(keys.installation(*_where(enterprise_id, team_id, None), BOT))

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        """Forget one installer's installation, or (no ``user_id``) every installer's."""
        enterprise_id, team_id = _where(enterprise_id, team_id, None)
        users_key = keys.installation(enterprise_id, team_id, USERS)
        if user_id:
            doomed = [keys.installation(enterprise_id, team_id, _user(user_id))]
            await self.redis.srem(users_key, user_id)
        else:
            users = cast(set[bytes], await self.redis.smembers(users_key))
            doomed = [keys.installation(enterprise_id, team_id, _user(u.decode())) for u in users]
            doomed += [keys.installation(enterprise_id, team_id, part) for part in (LATEST, TEAMS)] + [
                users_key
            ]
        await self.redis.delete(*doomed)
        log.info("installation deleted: organisation %s, workspace %s", enterprise_id or "-", team_id or "-")


def _where(
    enterprise_id: str | None, team_id: str | None, org_wide: bool | None
) -> tuple[str | None, str | None]:
    """Where an installation is kept: by its organisation when org-wide, else by its workspace."""
    return (enterprise_id, None) if org_wide or team_id is None else (None, team_id)


def _candidates(
    enterprise_id: str | None, team_id: str | None, org_wide: bool | None
) -> list[tuple[str | None, str | None]]:
    """Where to look, in order: the workspace's own install, then its organisation's org-wide one."""
    own = _where(enterprise_id, team_id, org_wide)
    return [own] + ([(enterprise_id, None)] if enterprise_id and own != (enterprise_id, None) else [])
