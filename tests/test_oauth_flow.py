"""OAuth mode end to end: install through Slack's flow, post with each workspace's token, and a
click from one workspace never decides another's request (signed payloads in Slack's shapes)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest
from redis.asyncio import Redis

from bot import SlackApprover
from bot.approvals import keys
from bot.approvals.allowlist import TeamAllowList
from bot.approvals.model import State, request_id_for
from bot.approvals.rules import Rule
from bot.slack.ids import SLASH_COMMAND, Action, Field
from bot.slack.installation_store import RedisInstallationStore
from tests.conftest import context, policy_file
from tests.fakes.bot_settings import CHANNEL, SIGNING_SECRET
from tests.fakes.redis_server import RedisServer
from tests.fakes.slack_block_actions import block_actions, static_select_action
from tests.fakes.slack_event_payloads import event_callback, message_event
from tests.fakes.slack_records import PostedMessage
from tests.fakes.slack_rules import DEFAULT_RATE_SCALE
from tests.fakes.slack_signing import sign, signed_form
from tests.fakes.slack_slash_commands import slash_command
from tests.fakes.slack_view_payloads import view_submission
from tests.fakes.slack_workspace import TEAM_ID
from tests.fakes.slack_workspaces import (
    CHANNEL_B,
    CLIENT_ID,
    CLIENT_SECRET,
    ENTERPRISE,
    TEAM_B,
    WorkspacesSlack,
)
from tests.fakes.worker import Worker, _button_value
from tests.test_questions import ONE

GRID_TEAM = "T0GRIDA"
GRID_CHANNEL = "C0GRIDAPPROVALS"
WORKSPACES = {
    TEAM_ID: {"channel": CHANNEL},
    TEAM_B: {"channel": CHANNEL_B},
    ENTERPRISE: {"channel": GRID_CHANNEL},
}


@pytest.fixture
async def slack() -> AsyncIterator[WorkspacesSlack]:
    """Replaces conftest's fake Slack here (``start_worker`` uses it): two workspaces and an organisation."""
    async with WorkspacesSlack.start(rate_scale=DEFAULT_RATE_SCALE) as fake:
        assert isinstance(fake, WorkspacesSlack)
        fake.add_workspace_channel(CHANNEL_B, "approvals-b", TEAM_B)
        fake.add_workspace_channel(GRID_CHANNEL, "approvals-grid", GRID_TEAM)
        fake.org_workspaces[GRID_TEAM] = ENTERPRISE
        yield fake
        assert fake.invalid == []


@pytest.fixture
def oauth_worker(start_worker: Callable[..., Awaitable[Worker]]) -> Callable[..., Awaitable[Worker]]:
    """Factory: a worker in OAuth mode, serving ``WORKSPACES``."""

    async def start(**overrides: Any) -> Worker:
        oauth: dict[str, Any] = {
            "slack_bot_token": None,
            "approval_channel": None,
            "slack_client_id": CLIENT_ID,
            "slack_client_secret": CLIENT_SECRET,
            "slack_workspaces": WORKSPACES,
        }
        return await start_worker(**{**oauth, **overrides})

    return start


async def begin_install(worker: Worker) -> tuple[str, str]:
    """GET /slack/install as a browser: the state, and the cookie that carries it."""
    async with worker.session.get(f"{worker.url}/slack/install", allow_redirects=False) as response:
        assert response.status == 302
        location = urlsplit(response.headers["Location"])
        cookie = response.headers["Set-Cookie"]
    assert location.path == "/oauth/v2/authorize"
    query = parse_qs(location.query)
    assert query["client_id"] == [CLIENT_ID]
    assert "chat:write" in query["scope"][0].split(",")
    state = query["state"][0]
    assert cookie.startswith(f"slack-app-oauth-state={state};") and "HttpOnly" in cookie
    return state, cookie.split(";")[0]


async def finish_install(worker: Worker, code: str, state: str, cookie: str) -> int:
    """Slack's redirect back with the code, in the browser that began the install."""
    url = f"{worker.url}/slack/oauth_redirect"
    async with worker.session.get(
        url, params={"code": code, "state": state}, headers={"Cookie": cookie}
    ) as r:
        await r.read()
        return r.status


async def install(
    worker: Worker, slack: WorkspacesSlack, team: str | None, enterprise: str | None = None
) -> None:
    state, cookie = await begin_install(worker)
    assert await finish_install(worker, slack.authorize(team, enterprise), state, cookie) == 200


async def click_as(
    worker: Worker,
    message: PostedMessage,
    user: str,
    *,
    team: str | None,
    user_team: str,
    enterprise: str | None = None,
    action: Action = Action.APPROVE,
) -> None:
    """Click ``action`` on ``message`` as ``user`` of ``user_team``, through the installation of
    ``team`` (``None``: the org-wide install of ``enterprise``), signed as Slack signs it."""
    payload = block_actions(
        user,
        action.value,
        _button_value(message, action),
        message=message.as_dict(),
        channel=message.channel,
        user_team=user_team,
        team=team,
        enterprise=enterprise,
    )
    response = await worker.post_signed(payload)
    assert response.status == 200


async def root_in(slack: WorkspacesSlack, channel: str) -> PostedMessage:
    await slack.wait_for(lambda: any(m.channel == channel and not m.thread_ts for m in slack.roots()))
    return next(m for m in slack.roots() if m.channel == channel)


async def test_install_then_post_and_decide_in_that_workspace_only(
    oauth_worker: Callable[..., Awaitable[Worker]],
    slack: WorkspacesSlack,
    redis: Redis,
    redis_server: RedisServer,
) -> None:
    worker = await oauth_worker()
    await install(worker, slack, TEAM_ID)
    await install(worker, slack, TEAM_B)
    bot = await RedisInstallationStore(redis).async_find_bot(enterprise_id=None, team_id=TEAM_B)
    assert bot is not None and bot.bot_token == slack.token_of(TEAM_B)

    approver = SlackApprover(redis_server.url, timeout=60, team=TEAM_B)
    async with approver:
        call = asyncio.create_task(
            approver.can_use_tool("Bash", {"command": "make deploy"}, context("toolu_b1"))
        )
        message = await root_in(slack, CHANNEL_B)  # only B's token can post there
        # A person of workspace A clicks (a signed payload, as Slack would send it): refused.
        await click_as(worker, message, "U0ALICE", team=TEAM_ID, user_team=TEAM_ID)
        notice = await slack.wait_for_call("chat.postEphemeral")
        assert "another Slack workspace" in notice.args["text"]
        assert not call.done()
        # The same click with the payload's workspace forged to B, the clicker still A's: refused too.
        await click_as(worker, message, "U0ALICE", team=TEAM_B, user_team=TEAM_ID)
        await slack.wait_for_call("chat.postEphemeral", count=2)
        assert not call.done()
        # A person of B decides it.
        await click_as(worker, message, "U0BOB", team=TEAM_B, user_team=TEAM_B)
        result = await asyncio.wait_for(call, 10)
    assert result.behavior == "allow"


async def test_org_wide_install_serves_the_organisations_workspaces(
    oauth_worker: Callable[..., Awaitable[Worker]], slack: WorkspacesSlack, redis_server: RedisServer
) -> None:
    worker = await oauth_worker()
    await install(worker, slack, TEAM_ID)
    await install(worker, slack, None, ENTERPRISE)
    approver = SlackApprover(redis_server.url, timeout=60, team=ENTERPRISE)
    async with approver:
        call = asyncio.create_task(approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_org")))
        message = await root_in(slack, GRID_CHANNEL)
        # Workspace A is not in the organisation.
        await click_as(worker, message, "U0ALICE", team=TEAM_ID, user_team=TEAM_ID)
        notice = await slack.wait_for_call("chat.postEphemeral")
        assert "another Slack workspace" in notice.args["text"]
        assert not call.done()
        # A person of a workspace of the organisation, through the org-wide install (team: null).
        await click_as(worker, message, "U0GRID", team=None, user_team=GRID_TEAM, enterprise=ENTERPRISE)
        result = await asyncio.wait_for(call, 10)
    assert result.behavior == "allow"


async def test_a_request_naming_no_installed_workspace_is_undeliverable(
    oauth_worker: Callable[..., Awaitable[Worker]], slack: WorkspacesSlack, redis_server: RedisServer
) -> None:
    await oauth_worker()
    for team in ("", TEAM_B):  # none named; named but never installed
        async with SlackApprover(redis_server.url, timeout=60, team=team) as approver:
            result = await asyncio.wait_for(
                approver.can_use_tool("Bash", {"command": "ls"}, context(f"toolu_{team or 'none'}")), 10
            )
            assert result.behavior == "deny"
            request = await approver.store.get(f"toolu_{team or 'none'}")
            del request
    assert slack.roots() == []


async def test_a_request_naming_no_served_workspace_is_denied_before_any_policy_allows_it(
    oauth_worker: Callable[..., Awaitable[Worker]],
    slack: WorkspacesSlack,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    """APPROVAL_POLICY is the served workspaces' policy: its allow rules never stand in for a
    workspace that is not served (an agent's SLACK_TEAM_ID mistyped, or left unset)."""
    rules = "rules:\n  - {name: ls, tool: Bash, command: '^ls', action: allow}\n"
    worker = await oauth_worker(approval_policy=policy_file(tmp_path, rules))
    await install(worker, slack, TEAM_ID)
    for team in ("", "T0STRANGER", "E0STRANGER"):
        async with SlackApprover(redis_server.url, timeout=60, team=team) as approver:
            result = await asyncio.wait_for(
                approver.can_use_tool("Bash", {"command": "ls"}, context(f"toolu_s{team}")), 10
            )
            request = await approver.store.get(request_id_for(f"toolu_s{team}"))
        assert result.behavior == "deny", team
        assert request is not None and request.state is State.UNDELIVERABLE, team
    # A served workspace's requests still follow the policy.
    async with SlackApprover(redis_server.url, timeout=60, team=TEAM_ID) as approver:
        allowed = await asyncio.wait_for(
            approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_a")), 10
        )
    assert allowed.behavior == "allow"
    assert slack.roots() == []


async def test_a_state_is_good_once_and_only_in_its_browser(
    oauth_worker: Callable[..., Awaitable[Worker]], slack: WorkspacesSlack, redis: Redis
) -> None:
    worker = await oauth_worker()
    state, cookie = await begin_install(worker)
    # Another browser (no cookie, or another state's): refused before the state is used.
    assert await finish_install(worker, slack.authorize(TEAM_B), state, "slack-app-oauth-state=other") == 400
    assert (
        await finish_install(
            worker, slack.authorize(TEAM_B), "never-issued", "slack-app-oauth-state=never-issued"
        )
        == 401
    )
    assert await finish_install(worker, slack.authorize(TEAM_B), state, cookie) == 200
    assert await finish_install(worker, slack.authorize(TEAM_B), state, cookie) == 401  # reused
    state, cookie = await begin_install(worker)
    await redis.pexpire(keys.oauth_state(state), 1)  # its 10 minutes are up
    await asyncio.sleep(0.05)
    assert await finish_install(worker, slack.authorize(TEAM_B), state, cookie) == 401


async def test_a_code_slack_rejects_and_a_workspace_not_served(
    oauth_worker: Callable[..., Awaitable[Worker]], slack: WorkspacesSlack, redis: Redis
) -> None:
    worker = await oauth_worker()
    state, cookie = await begin_install(worker)
    assert await finish_install(worker, "not-a-code", state, cookie) == 401
    state, cookie = await begin_install(worker)
    assert await finish_install(worker, slack.authorize("T0STRANGER"), state, cookie) == 403
    assert (
        await RedisInstallationStore(redis).async_find_bot(enterprise_id=None, team_id="T0STRANGER") is None
    )
    # Reusing a code Slack already exchanged.
    code = slack.authorize(TEAM_B)
    state, cookie = await begin_install(worker)
    assert await finish_install(worker, code, state, cookie) == 200
    state, cookie = await begin_install(worker)
    assert await finish_install(worker, code, state, cookie) == 401
    assert [c.response.get("error") for c in slack.calls_to("oauth.v2.access")] == [
        "invalid_code",
        None,
        None,
        "invalid_code",
    ]
    # An org-wide install whose workspaces Slack will not list is not kept (its people could not click).
    slack.fail("auth.teams.list", "internal_error")
    state, cookie = await begin_install(worker)
    assert await finish_install(worker, slack.authorize(None, ENTERPRISE), state, cookie) == 500
    store = RedisInstallationStore(redis)
    assert (
        await store.async_find_bot(enterprise_id=ENTERPRISE, team_id=None, is_enterprise_install=True) is None
    )


async def test_a_workspace_token_cannot_post_in_another_workspaces_channel(slack: WorkspacesSlack) -> None:
    code = slack.authorize(TEAM_B)
    slack.installed["xoxb-direct"] = TEAM_B
    del code
    async with aiohttp.ClientSession() as session:
        for token, channel, expected in (
            ("xoxb-direct", CHANNEL, "channel_not_found"),
            (slack.token, CHANNEL_B, "channel_not_found"),
            ("xoxb-direct", CHANNEL_B, None),
        ):
            async with session.post(
                f"{slack.base_url}chat.postMessage",
                json={"channel": channel, "text": "hi"},
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                body = await response.json()
            assert body.get("error") == expected, (token, channel, body)


async def test_a_deny_form_from_another_workspace_decides_nothing(
    oauth_worker: Callable[..., Awaitable[Worker]], slack: WorkspacesSlack, redis_server: RedisServer
) -> None:
    """A person of B opens the Deny form; its submission, replayed as a person of A
    (signed, in Slack's shape), is refused by the mechanism that decides."""
    worker = await oauth_worker()
    await install(worker, slack, TEAM_ID)
    await install(worker, slack, TEAM_B)
    async with SlackApprover(redis_server.url, timeout=60, team=TEAM_B) as approver:
        call = asyncio.create_task(
            approver.can_use_tool("Bash", {"command": "rm -rf x"}, context("toolu_deny"))
        )
        message = await root_in(slack, CHANNEL_B)
        await click_as(worker, message, "U0BOB", team=TEAM_B, user_team=TEAM_B, action=Action.DENY)
        update = await slack.wait_for_call("views.update")
        view = slack.views[update.args["view_id"]]
        values = {Field.REASON_BLOCK.value: {Field.REASON_INPUT.value: "no"}}
        forged = view_submission(
            "U0ALICE",
            view["callback_id"],
            view["private_metadata"],
            values,
            view=view,
            user_team=TEAM_ID,
            team=TEAM_ID,
        )
        body, headers = signed_form(forged, SIGNING_SECRET)
        async with worker.session.post(f"{worker.url}/slack/events", data=body, headers=headers) as response:
            answer = await response.json()
        assert answer["response_action"] == "update"
        assert "another Slack workspace" in json.dumps(answer["view"])
        request = await approver.store.get(request_id_for("toolu_deny"))
        assert request is not None and request.state is State.PENDING and not call.done()
        # Opening the form from workspace A is refused too: the form says so instead.
        await click_as(worker, message, "U0ALICE", team=TEAM_ID, user_team=TEAM_ID, action=Action.DENY)
        update = await slack.wait_for_call("views.update", count=2)
        assert "another Slack workspace" in json.dumps(slack.views[update.args["view_id"]])
        # Once B has decided it, A's click is told the same, not who decided.
        await worker.post_signed(
            view_submission(
                "U0BOB",
                view["callback_id"],
                view["private_metadata"],
                values,
                view=view,
                user_team=TEAM_B,
                team=TEAM_B,
            )
        )
        assert (await asyncio.wait_for(call, 10)).behavior == "deny"
        await click_as(worker, message, "U0ALICE", team=TEAM_ID, user_team=TEAM_ID, action=Action.DENY)
        update = await slack.wait_for_call("views.update", count=3)
        shown = json.dumps(slack.views[update.args["view_id"]])
        assert "another Slack workspace" in shown and "U0BOB" not in shown


async def test_an_uninstall_forgets_the_workspaces_token(
    oauth_worker: Callable[..., Awaitable[Worker]], slack: WorkspacesSlack, redis: Redis
) -> None:
    worker = await oauth_worker()
    await install(worker, slack, TEAM_ID)
    await install(worker, slack, TEAM_B)
    store = RedisInstallationStore(redis)
    assert await worker.event(event_callback({"type": "app_uninstalled"}, team_id=TEAM_B)) == 200
    assert await store.async_find_bot(enterprise_id=None, team_id=TEAM_B) is None
    assert await store.async_find_installation(enterprise_id=None, team_id=TEAM_B) is None
    assert await store.async_find_bot(enterprise_id=None, team_id=TEAM_ID) is not None


async def test_a_workspace_with_its_own_policy(
    oauth_worker: Callable[..., Awaitable[Worker]],
    slack: WorkspacesSlack,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    rules = "rules:\n  - {name: no-rm, tool: Bash, command: '^rm ', action: deny, message: Not here.}\n"
    workspaces = {**WORKSPACES, TEAM_B: {"channel": CHANNEL_B, "policy": str(policy_file(tmp_path, rules))}}
    worker = await oauth_worker(slack_workspaces=workspaces)
    await install(worker, slack, TEAM_ID)
    await install(worker, slack, TEAM_B)
    async with SlackApprover(redis_server.url, timeout=60, team=TEAM_B) as in_b:
        denied = await asyncio.wait_for(
            in_b.can_use_tool("Bash", {"command": "rm -rf x"}, context("toolu_pb")), 10
        )
    assert denied.behavior == "deny" and "Not here." in denied.message
    async with SlackApprover(redis_server.url, timeout=60, team=TEAM_ID) as in_a:
        call = asyncio.create_task(in_a.can_use_tool("Bash", {"command": "rm -rf x"}, context("toolu_pa")))
        await root_in(slack, CHANNEL)  # A's requests follow APPROVAL_POLICY (none: ask in A's channel)
        call.cancel()


async def test_approvals_lists_only_its_own_workspaces_requests(
    oauth_worker: Callable[..., Awaitable[Worker]], slack: WorkspacesSlack, redis_server: RedisServer
) -> None:
    worker = await oauth_worker()
    await install(worker, slack, TEAM_ID)
    await install(worker, slack, TEAM_B)
    async with SlackApprover(redis_server.url, timeout=60, team=TEAM_B) as approver:
        call = asyncio.create_task(approver.can_use_tool("Bash", {"command": "make b"}, context("toolu_lb")))
        await root_in(slack, CHANNEL_B)
        for team, listed in ((TEAM_B, True), (TEAM_ID, False)):
            body = urlencode(slash_command("U0ANY", SLASH_COMMAND, channel=CHANNEL, team_id=team)).encode()
            headers = {**sign(body, SIGNING_SECRET), "Content-Type": "application/x-www-form-urlencoded"}
            async with worker.session.post(
                f"{worker.url}/slack/events", data=body, headers=headers
            ) as response:
                answer = await response.json()
            assert ("make b" in json.dumps(answer)) is listed, (team, answer)
        call.cancel()


async def slash_rules(worker: Worker, team: str) -> str:
    """``/approvals rules`` typed in workspace ``team``: the answer, as text."""
    body = urlencode(slash_command("U0ANY", SLASH_COMMAND, "rules", channel=CHANNEL, team_id=team)).encode()
    headers = {**sign(body, SIGNING_SECRET), "Content-Type": "application/x-www-form-urlencoded"}
    async with worker.session.post(f"{worker.url}/slack/events", data=body, headers=headers) as response:
        return json.dumps(await response.json())


async def test_a_workspace_neither_sees_nor_removes_another_workspaces_team_rules(
    oauth_worker: Callable[..., Awaitable[Worker]], slack: WorkspacesSlack, redis: Redis
) -> None:
    worker = await oauth_worker()
    await install(worker, slack, TEAM_ID)
    await install(worker, slack, TEAM_B)
    allowlist = TeamAllowList(redis)
    rule = Rule.parse("Bash(make b *)")
    await allowlist.add([rule], added_by="U0BOB", team=TEAM_B)
    assert "make b" in await slash_rules(worker, TEAM_B)
    assert "make b" not in await slash_rules(worker, TEAM_ID)
    # A Remove click on B's rule id from workspace A (signed, in Slack's shape) changes nothing.
    for n, (user, team) in enumerate((("U0ALICE", TEAM_ID), ("U0BOB", TEAM_B)), start=1):
        click = block_actions(
            user,
            Action.REMOVE_RULE.value,
            rule.id,
            channel=CHANNEL,
            response_url=slack.response_url(CHANNEL, f"1.{n}"),
            user_team=team,
            team=team,
            ephemeral=True,
        )
        assert (await worker.post_signed(click)).status == 200
        answer = await slack.wait_for_call("response_url", count=n)
        kept = [r.rule for r in await allowlist.all()]
        assert (kept == [rule]) is (team == TEAM_ID), (team, kept, answer.args)


async def test_an_org_wide_install_follows_the_workspaces_slack_grants_and_revokes(
    oauth_worker: Callable[..., Awaitable[Worker]], slack: WorkspacesSlack, redis_server: RedisServer
) -> None:
    """A workspace the organisation's admin takes away from the install (``team_access_revoked``)
    decides nothing from then on; one granted later (``team_access_granted``) may, without a reinstall."""
    worker = await oauth_worker()
    await install(worker, slack, None, ENTERPRISE)

    async def access(change: str) -> None:
        event = {"type": f"team_access_{change}", "team_ids": [GRID_TEAM], "event_ts": "1.0"}
        sent = event_callback(event, team_id=GRID_TEAM, enterprise_id=ENTERPRISE, org_wide=True)
        assert await worker.event(sent) == 200

    async with SlackApprover(redis_server.url, timeout=60, team=ENTERPRISE) as approver:
        call = asyncio.create_task(approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_rv")))
        message = await root_in(slack, GRID_CHANNEL)
        await access("revoked")
        await click_as(worker, message, "U0GRID", team=None, user_team=GRID_TEAM, enterprise=ENTERPRISE)
        await slack.wait_for_call("chat.postEphemeral")
        # Nor does a payload that ties the clicker's workspace to the organisation ("team" with
        # its enterprise_id): being of the organisation is not being granted to its install.
        await click_as(worker, message, "U0GRID", team=GRID_TEAM, user_team=GRID_TEAM, enterprise=ENTERPRISE)
        request = await approver.store.get(
            request_id_for("toolu_rv")
        )  # the click's answer came after its decision
        assert request is not None and request.state is State.PENDING and not request.votes
        assert not call.done()
        await access("granted")
        await click_as(worker, message, "U0GRID", team=None, user_team=GRID_TEAM, enterprise=ENTERPRISE)
        result = await asyncio.wait_for(call, 10)
    assert result.behavior == "allow"


async def test_a_thread_reply_from_another_workspace_is_not_the_requests_discussion(
    oauth_worker: Callable[..., Awaitable[Worker]], slack: WorkspacesSlack, redis_server: RedisServer
) -> None:
    """In a channel both workspaces share, a person of A writing in B's request's thread does not
    speak to B's agent (the discussion its model reads on a deny)."""
    worker = await oauth_worker()
    await install(worker, slack, TEAM_ID)
    await install(worker, slack, TEAM_B)
    async with SlackApprover(redis_server.url, timeout=60, team=TEAM_B) as approver:
        call = asyncio.create_task(approver.can_use_tool("Bash", {"command": "make b"}, context("toolu_th")))
        message = await root_in(slack, CHANNEL_B)
        for n, (user, team) in enumerate((("U0ALICE", TEAM_ID), ("U0BOB", TEAM_B)), start=1):
            reply = message_event(
                CHANNEL_B,
                f"{float(message.ts) + n:.6f}",
                user,
                f"from {team}",
                thread_ts=message.ts,
                user_team=team,
            )
            assert await worker.event(event_callback(reply, team_id=TEAM_B)) == 200
        discussion = await approver.store.discussion(request_id_for("toolu_th"))
        assert [r.user for r in discussion] == ["U0BOB"]
        call.cancel()


async def test_a_reply_from_another_workspace_read_back_from_slack_is_not_the_requests_discussion(
    oauth_worker: Callable[..., Awaitable[Worker]],
    slack: WorkspacesSlack,
    redis_server: RedisServer,
    redis: Redis,
) -> None:
    """The thread as ``conversations.replies`` reads it when someone opens the Deny form: filtered alike."""
    worker = await oauth_worker()
    await install(worker, slack, TEAM_ID)
    await install(worker, slack, TEAM_B)
    async with SlackApprover(redis_server.url, timeout=60, team=TEAM_B) as approver:
        call = asyncio.create_task(approver.can_use_tool("Bash", {"command": "make b"}, context("toolu_rb")))
        message = await root_in(slack, CHANNEL_B)
        slack.reply(CHANNEL_B, message.ts, "U0ALICE", "approved by A, run it", team=TEAM_ID)
        slack.reply(CHANNEL_B, message.ts, "U0BOB", "not today", team=TEAM_B)
        await click_as(worker, message, "U0BOB", team=TEAM_B, user_team=TEAM_B, action=Action.DENY)
        thread = keys.thread(request_id_for("toolu_rb"))
        async with asyncio.timeout(5):
            while not await redis.hlen(thread):
                await asyncio.sleep(0.02)
        discussion = await approver.store.discussion(request_id_for("toolu_rb"))
        assert [r.user for r in discussion] == ["U0BOB"]
        call.cancel()


async def test_another_workspace_cannot_read_a_requests_full_input(
    oauth_worker: Callable[..., Awaitable[Worker]], slack: WorkspacesSlack, redis_server: RedisServer
) -> None:
    worker = await oauth_worker()
    await install(worker, slack, TEAM_ID)
    await install(worker, slack, TEAM_B)
    secret = "".join(f"line {i:05d}\n" for i in range(2_000))
    async with SlackApprover(redis_server.url, timeout=60, team=TEAM_B) as approver:
        tool_input = {"file_path": "/tmp/b.txt", "content": secret}
        call = asyncio.create_task(approver.can_use_tool("Write", tool_input, context("toolu_fi")))
        message = await root_in(slack, CHANNEL_B)
        for n, (user, team) in enumerate((("U0ALICE", TEAM_ID), ("U0BOB", TEAM_B)), start=1):
            await click_as(worker, message, user, team=team, user_team=team, action=Action.VIEW_INPUT)
            update = await slack.wait_for_call("views.update", count=n)
            shown = json.dumps(slack.views[update.args["view_id"]])
            assert ("line 01999" in shown or "Next page" in shown) is (team == TEAM_B), (team, shown[:300])
            assert ("another Slack workspace" in shown) is (team == TEAM_ID)
        call.cancel()


async def test_a_pick_from_another_workspace_learns_nothing_of_the_request(
    oauth_worker: Callable[..., Awaitable[Worker]], slack: WorkspacesSlack, redis_server: RedisServer
) -> None:
    """A menu pick on B's answered question, from workspace A: told it is another workspace's, not
    who answered it."""
    worker = await oauth_worker()
    await install(worker, slack, TEAM_ID)
    await install(worker, slack, TEAM_B)
    async with SlackApprover(redis_server.url, timeout=60, team=TEAM_B) as approver:
        call = asyncio.create_task(approver.can_use_tool("AskUserQuestion", ONE, context("toolu_q")))
        message = await root_in(slack, CHANNEL_B)
        for user, team in (("U0BOB", TEAM_B), ("U0ALICE", TEAM_ID)):
            payload = static_select_action(
                user, Action.CHOOSE_ANSWER.value, "0", message=message.as_dict(), channel=CHANNEL_B
            )
            payload["user"]["team_id"] = team
            payload["team"] = {"id": team, "domain": team.lower()}
            assert (await worker.post_signed(payload)).status == 200
            if team == TEAM_B:
                assert (await asyncio.wait_for(call, 10)).behavior == "allow"
    notice = await slack.wait_for_call("chat.postEphemeral")
    assert "another Slack workspace" in notice.args["text"] and "U0BOB" not in notice.args["text"]


async def test_who_may_remove_a_team_rule_is_said_by_its_workspaces_own_policy(
    oauth_worker: Callable[..., Awaitable[Worker]], slack: WorkspacesSlack, redis: Redis, tmp_path: Path
) -> None:
    """B's own policy names who manages its rules; APPROVAL_POLICY (none here: anyone) does not."""
    rules = "admins: [U0ADMIN]\nrules:\n  - {name: sre-only, tool: Bash, command: '^terraform ', approvers: [U0SRE]}\n"
    own = tmp_path / "b"
    own.mkdir()
    workspaces = {**WORKSPACES, TEAM_B: {"channel": CHANNEL_B, "policy": str(policy_file(own, rules))}}
    worker = await oauth_worker(slack_workspaces=workspaces)
    await install(worker, slack, TEAM_B)
    allowlist = TeamAllowList(redis)
    rule = Rule.parse("Bash(terraform plan *)")
    await allowlist.add([rule], added_by="U0SRE", route="sre-only", team=TEAM_B)
    for n, user in enumerate(("U0MALLORY", "U0ADMIN"), start=1):
        click = block_actions(
            user,
            Action.REMOVE_RULE.value,
            rule.id,
            channel=CHANNEL_B,
            response_url=slack.response_url(CHANNEL_B, f"1.{n}"),
            user_team=TEAM_B,
            team=TEAM_B,
            ephemeral=True,
        )
        assert (await worker.post_signed(click)).status == 200
        await slack.wait_for_call("response_url", count=n)
        assert [r.id for r in await allowlist.all()] == ([rule.id] if user == "U0MALLORY" else []), user
