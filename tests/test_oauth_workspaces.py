"""OAuth mode's Slack client: each call carries the token of the workspace its job or listener acts for."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from slack_sdk.errors import SlackApiError

from bot.approvals.allowlist import TeamAllowList
from bot.approvals.rules import Rule
from bot.cli.check import check
from bot.settings import Settings
from bot.slack.installation_store import RedisInstallationStore
from bot.slack.workspaces import NotInstalled, WorkspaceClient, Workspaces, acting_for
from tests.fakes.bot_settings import CHANNEL
from tests.fakes.redis_server import RedisServer
from tests.fakes.slack_workspace import TEAM_ID
from tests.fakes.slack_workspaces import CHANNEL_B, TEAM_B, WorkspacesSlack
from tests.test_oauth_stores import installation


@pytest.fixture
async def multi() -> AsyncIterator[WorkspacesSlack]:
    async with WorkspacesSlack.start(rate_scale=None) as fake:
        assert isinstance(fake, WorkspacesSlack)
        fake.add_workspace_channel(CHANNEL_B, "approvals-b", TEAM_B)
        fake.installed["xoxb-b"] = TEAM_B
        yield fake


async def client_for(multi: WorkspacesSlack, redis: Redis) -> WorkspaceClient:
    store = RedisInstallationStore(redis)
    await store.async_save(installation(TEAM_B, token="xoxb-b"))
    await store.async_save(installation(TEAM_ID, token=multi.token))
    settings = Settings(
        _env_file=None, slack_workspaces={TEAM_ID: {"channel": CHANNEL}, TEAM_B: {"channel": CHANNEL_B}}
    )
    return WorkspaceClient(base_url=multi.base_url, workspaces=Workspaces(settings, store))


async def test_each_call_carries_its_workspaces_token(multi: WorkspacesSlack, redis: Redis) -> None:
    client = await client_for(multi, redis)
    with acting_for(TEAM_B):
        assert (await client.chat_postMessage(channel=CHANNEL_B, text="b"))["ok"]
        assert (await client.auth_test())["team_id"] == TEAM_B
    with acting_for(TEAM_ID):
        assert (await client.chat_postMessage(channel=CHANNEL, text="a"))["ok"]
        with pytest.raises(SlackApiError, match="channel_not_found"):
            await client.chat_postMessage(channel=CHANNEL_B, text="a into b")


async def test_a_call_naming_its_token_keeps_it(multi: WorkspacesSlack, redis: Redis) -> None:
    """Bolt's authorization asks auth.test with the token it found, whatever ran before on the connection."""
    client = await client_for(multi, redis)
    with acting_for(TEAM_B):
        assert (await client.auth_test(token=multi.token))["team_id"] == TEAM_ID


async def test_no_installation_no_call(multi: WorkspacesSlack, redis: Redis) -> None:
    client = await client_for(multi, redis)
    for workspace in ("", "T0NEVER"):
        with acting_for(workspace), pytest.raises(NotInstalled):
            await client.chat_postMessage(channel=CHANNEL, text="x")
    assert multi.calls_to("chat.postMessage") == []


async def test_an_always_allow_rule_stands_in_its_own_workspace_only(redis: Redis) -> None:
    """A rule granted on workspace B's request never approves workspace A's calls (nor the reverse)."""
    allowlist = TeamAllowList(redis)
    await allowlist.add([Rule.parse("Bash(make deploy)")], added_by="U0BOB", request="r1", team=TEAM_B)
    call = ("Bash", {"command": "make deploy"})
    assert [g.by for g in await allowlist.grants(*call, team=TEAM_B)] == ["U0BOB"]
    assert await allowlist.grants(*call, team=TEAM_ID) == []
    assert await allowlist.grants(*call) == []  # one bot token: rules granted with none
    entry = (await allowlist.all())[0]
    assert entry.team == TEAM_B


async def test_check_checks_each_workspaces_install_and_channel(
    multi: WorkspacesSlack, redis: Redis, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    await RedisInstallationStore(redis).async_save(installation(TEAM_B, token="xoxb-b"))
    settings = Settings(
        _env_file=None,
        redis_url=redis_server.url,
        slack_api_url=multi.base_url,
        slack_signing_secret="secret",
        slack_client_id="1111.2222",
        slack_client_secret="secret",
        slack_workspaces={TEAM_ID: {"channel": CHANNEL}, TEAM_B: {"channel": CHANNEL_B}},
    )
    assert await check(settings) == 1
    lines = capsys.readouterr().out.splitlines()
    assert f"FAIL slack token of {TEAM_ID}: not installed yet: open /slack/install in that workspace" in lines
    assert any(line.startswith(f"ok   slack token of {TEAM_B}") for line in lines)
    assert f"ok   approval channel of {TEAM_B}: #approvals-b ({CHANNEL_B})" in lines
