"""With SLACK_APP_TOKEN set, clicks arrive over Socket Mode instead of HTTP."""

from __future__ import annotations

import asyncio

import pytest

from bot.slack.ids import Action
from tests.conftest import context, posted
from tests.fakes.slack_block_actions import block_actions
from tests.fakes.slack_workspace import APP_TOKEN


async def test_a_click_over_socket_mode_decides_the_request(start_worker, make_approver, slack):
    worker = await start_worker(slack_app_token=APP_TOKEN, slack_signing_secret=None)
    approver = await make_approver()
    decision = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "make deploy"}, context("toolu_socket"))
    )
    message = await posted(slack)

    value = next(e["value"] for b in message.blocks if b["type"] == "actions" for e in b["elements"])
    payload = block_actions(
        "U_ALICE", Action.APPROVE.value, value, message=message.as_dict(), user_name="alice"
    )
    ack = await slack.send_over_socket("interactive", payload)

    assert ack["envelope_id"]
    result = await asyncio.wait_for(decision, 5)
    assert result.behavior == "allow"
    await slack.wait_for(lambda: slack.message(message.channel, message.ts).edits >= 1)
    assert "Approved by <@U_ALICE>" in str(slack.message(message.channel, message.ts).blocks)
    # No HTTP endpoint for Slack in this mode: nothing unsigned can get in that way.
    async with worker.session.post(f"{worker.url}/slack/events", data=b"{}") as response:
        assert response.status == 404


async def test_healthz_reports_the_socket_and_is_503_while_it_is_down(start_worker, slack):
    worker = await start_worker(slack_app_token=APP_TOKEN, slack_signing_secret=None)

    async def health() -> tuple[int, dict]:
        async with worker.session.get(f"{worker.url}/healthz") as response:
            return response.status, await response.json()

    assert await health() == (200, {"ok": True, "socket_mode": "connected"})
    await slack.drop_socket()

    async def down() -> tuple[int, dict]:
        while (answer := await health())[0] == 200:
            await asyncio.sleep(0.05)
        return answer

    status, body = await asyncio.wait_for(down(), 10)
    assert status == 503 and body["socket_mode"] == "disconnected"


@pytest.mark.slow
async def test_serve_exits_at_once_with_one_line_when_slack_refuses_the_app_token(
    tmp_path, redis_server, slack
):
    from tests.test_cli import configured, run

    values = configured(redis_server, slack, SLACK_APP_TOKEN="xapp-revoked", SLACK_SIGNING_SECRET="")
    code, _out, err = await asyncio.wait_for(run("serve", cwd=tmp_path, **values), 30)
    assert code == 2, err
    refusals = [line for line in err.splitlines() if "SLACK_APP_TOKEN" in line]
    assert refusals == [
        (
            "error: Slack refused SLACK_APP_TOKEN (invalid_auth): give the app-level token (xapp-…) "
            "with the connections:write scope, from the app's Basic Information page"
        )
    ]
    assert "Traceback" not in err and "Retrying" not in err
    assert [c.method for c in slack.calls_to("apps.connections.open")] == ["apps.connections.open"]


async def test_a_slack_outage_at_start_is_not_taken_for_a_refused_app_token(start_worker, slack):
    """open_socket_mode treats every SlackApiError but ``ratelimited`` as a refusal of the token:
    an ``internal_error`` / ``service_unavailable`` answer, or an HTML 5xx from Slack's edge,
    makes a worker with a good xapp token exit at start saying "Slack refused SLACK_APP_TOKEN",
    where slack_sdk would have retried until Slack was back."""
    slack.fail("apps.connections.open", "service_unavailable")
    worker = await start_worker(slack_app_token=APP_TOKEN, slack_signing_secret=None)

    async def connected() -> None:
        while True:
            async with worker.session.get(f"{worker.url}/healthz") as response:
                if response.status == 200:
                    return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(connected(), 15)
