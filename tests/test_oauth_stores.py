"""The Redis-backed installation and OAuth state stores (slack_sdk's semantics, on a real Redis)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis.asyncio import Redis
from slack_sdk.oauth.installation_store.models.installation import Installation

from bot.approvals import keys
from bot.slack.installation_store import RedisInstallationStore
from bot.slack.oauth_state import RedisOAuthStateStore


def installation(
    team: str | None, enterprise: str | None = None, *, user: str = "U0INSTALLER", token: str = "xoxb-1"
) -> Installation:
    return Installation(
        app_id="A0APP",
        enterprise_id=enterprise,
        team_id=team,
        bot_token=token,
        bot_id="B0BOT",
        bot_user_id="U0BOT",
        bot_scopes="chat:write,commands",
        user_id=user,
        is_enterprise_install=team is None,
    )


async def test_a_workspace_install_is_found_by_its_workspace(redis: Redis) -> None:
    store = RedisInstallationStore(redis)
    await store.async_save(installation("T0A", token="xoxb-a"))
    bot = await store.async_find_bot(enterprise_id=None, team_id="T0A")
    assert bot is not None and bot.bot_token == "xoxb-a" and bot.bot_scopes == ["chat:write", "commands"]
    found = await store.async_find_installation(enterprise_id=None, team_id="T0A")
    assert found is not None and found.user_id == "U0INSTALLER" and found.bot_token == "xoxb-a"
    assert await store.async_find_bot(enterprise_id=None, team_id="T0B") is None


async def test_a_grid_workspace_install_is_found_with_or_without_its_organisation(redis: Redis) -> None:
    store = RedisInstallationStore(redis)
    await store.async_save(installation("T0A", "E0ORG", token="xoxb-a"))
    for enterprise in ("E0ORG", None):
        bot = await store.async_find_bot(enterprise_id=enterprise, team_id="T0A")
        assert bot is not None and bot.bot_token == "xoxb-a"


async def test_an_org_wide_install_serves_every_workspace_of_its_organisation(redis: Redis) -> None:
    store = RedisInstallationStore(redis)
    await store.async_save(installation(None, "E0ORG", token="xoxb-org"))
    for team in ("T0ONE", "T0TWO", None):
        bot = await store.async_find_bot(enterprise_id="E0ORG", team_id=team)
        assert bot is not None and bot.bot_token == "xoxb-org" and bot.is_enterprise_install
    org = await store.async_find_installation(
        enterprise_id="E0ORG", team_id="T0ONE", is_enterprise_install=True
    )
    assert org is not None and org.is_enterprise_install and org.team_id is None
    # Another organisation's workspace is not served by it.
    assert await store.async_find_bot(enterprise_id="E0OTHER", team_id="T0ONE") is None
    # A workspace's own install wins over its organisation's.
    await store.async_save(installation("T0ONE", "E0ORG", token="xoxb-one"))
    bot = await store.async_find_bot(enterprise_id="E0ORG", team_id="T0ONE")
    assert bot is not None and bot.bot_token == "xoxb-one"


async def test_an_org_wide_installs_workspaces_follow_grants_to_a_kept_install_only(redis: Redis) -> None:
    store = RedisInstallationStore(redis)
    await store.grant_org_workspaces("E0ORG", ["T0ONE"], granted=True)  # not installed: dropped
    assert not await store.in_organisation("T0ONE", "E0ORG")
    await store.async_save(installation(None, "E0ORG", token="xoxb-org"))
    await store.save_org_workspaces("E0ORG", ["T0ONE"])
    await store.grant_org_workspaces("E0ORG", ["T0TWO"], granted=True)
    await store.grant_org_workspaces("E0ORG", ["T0ONE"], granted=False)
    assert [await store.in_organisation(t, "E0ORG") for t in ("T0ONE", "T0TWO")] == [False, True]


async def test_each_installer_and_the_latest_bot_token(redis: Redis) -> None:
    store = RedisInstallationStore(redis)
    await store.async_save(installation("T0A", user="U0ONE", token="xoxb-old"))
    await store.async_save(installation("T0A", user="U0TWO", token="xoxb-new"))
    one = await store.async_find_installation(enterprise_id=None, team_id="T0A", user_id="U0ONE")
    # U0ONE's record predates the reinstall: the newest bot token wins.
    assert one is not None and one.user_id == "U0ONE" and one.bot_token == "xoxb-new"
    latest = await store.async_find_installation(enterprise_id=None, team_id="T0A")
    assert latest is not None and latest.user_id == "U0TWO"

    await store.async_delete_installation(enterprise_id=None, team_id="T0A", user_id="U0TWO")
    assert await store.async_find_installation(enterprise_id=None, team_id="T0A", user_id="U0TWO") is None
    assert await store.async_find_installation(enterprise_id=None, team_id="T0A", user_id="U0ONE") is not None

    await store.async_delete_all(enterprise_id=None, team_id="T0A")
    assert await store.async_find_bot(enterprise_id=None, team_id="T0A") is None
    assert await store.async_find_installation(enterprise_id=None, team_id="T0A") is None
    assert await store.async_find_installation(enterprise_id=None, team_id="T0A", user_id="U0ONE") is None
    assert await redis.keys(keys.INSTALL_PREFIX + "*") == []


async def test_delete_bot_leaves_the_installers(redis: Redis) -> None:
    store = RedisInstallationStore(redis)
    await store.async_save(installation(None, "E0ORG", token="xoxb-org"))
    await store.async_delete_bot(enterprise_id="E0ORG", team_id=None)
    assert await store.async_find_bot(enterprise_id="E0ORG", team_id=None, is_enterprise_install=True) is None
    assert await store.async_find_installation(enterprise_id="E0ORG", team_id=None, user_id="U0INSTALLER")


async def test_tokens_are_never_logged(redis: Redis, caplog: pytest.LogCaptureFixture) -> None:
    store = RedisInstallationStore(redis)
    with caplog.at_level(logging.DEBUG):
        await store.async_save(installation("T0A", token="xoxb-secret-token"))
        await store.async_find_installation(enterprise_id=None, team_id="T0A")
        await store.async_delete_all(enterprise_id=None, team_id="T0A")
    assert "T0A" in caplog.text
    assert "xoxb-secret-token" not in caplog.text


async def test_a_state_is_good_once(redis: Redis) -> None:
    states = RedisOAuthStateStore(redis)
    state = await states.async_issue()
    other = await states.async_issue()
    assert state != other
    assert await states.async_consume(state)
    assert not await states.async_consume(state)  # reused
    assert not await states.async_consume("never-issued")
    assert not await states.async_consume("")
    assert await states.async_consume(other)


async def test_a_state_expires(redis: Redis) -> None:
    states = RedisOAuthStateStore(redis)
    state = await states.async_issue()
    assert 0 < await redis.ttl(keys.oauth_state(state)) <= keys.OAUTH_STATE_TTL
    await redis.pexpire(keys.oauth_state(state), 1)
    await asyncio.sleep(0.05)
    assert not await states.async_consume(state)


async def test_concurrent_consumers_of_one_state_one_wins(redis: Redis) -> None:
    states = RedisOAuthStateStore(redis)
    state = await states.async_issue()
    results = await asyncio.gather(*(states.async_consume(state) for _ in range(10)))
    assert results.count(True) == 1
