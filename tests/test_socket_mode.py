"""With SLACK_APP_TOKEN set, clicks arrive over Socket Mode instead of HTTP."""

from __future__ import annotations

import asyncio

from bot.slack.ids import Action
from tests.conftest import context, posted
from tests.fakes.slack_api import APP_TOKEN
from tests.fakes.slack_payloads import block_actions


async def test_a_click_over_socket_mode_decides_the_request(start_worker, make_approver, slack):
    worker = await start_worker(slack_app_token=APP_TOKEN, slack_signing_secret=None)
    approver = await make_approver()
    decision = asyncio.create_task(approver.can_use_tool("Bash", {"command": "make deploy"}, context("toolu_socket")))
    message = await posted(slack)

    value = next(e["value"] for b in message.blocks if b["type"] == "actions" for e in b["elements"])
    payload = block_actions("U_ALICE", Action.APPROVE.value, value, message=message.as_dict(), user_name="alice")
    ack = await slack.send_over_socket("interactive", payload)

    assert ack["envelope_id"]
    result = await asyncio.wait_for(decision, 5)
    assert result.behavior == "allow"
    await slack.wait_for(lambda: slack.message(message.channel, message.ts).edits >= 1)
    assert "Approved by <@U_ALICE>" in str(slack.message(message.channel, message.ts).blocks)
    # No HTTP endpoint for Slack in this mode: nothing unsigned can get in that way.
    async with worker.session.post(f"{worker.url}/slack/events", data=b"{}") as response:
        assert response.status == 404
