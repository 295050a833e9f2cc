"""*View full input* shows all of a huge input: Next and Previous turn the pages of the same modal."""

from __future__ import annotations

import asyncio
import copy
import html
import json
import re

from bot.slack.ids import Action
from tests.conftest import cancelled, context, posted
from tests.fakes.slack_api import view_errors
from tests.fakes.slack_payloads import block_actions

_FENCED = re.compile(r"^```\n(.*)\n```$", re.S)


def _code(view: dict) -> str:
    """The input a page shows, as the person reads it."""
    parts = []
    for block in view["blocks"]:
        match = _FENCED.match(block.get("text", {}).get("text", "")) if block["type"] == "section" else None
        if match:
            parts.append(html.unescape(match.group(1).replace("`\u200b", "`")))
    return "".join(parts)


def _turn(user: str, view: dict, action: Action) -> dict:
    """A click on a button in a modal, as Slack sends it: no channel, no message; the view instead."""
    button = next(e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == action.value)
    payload = block_actions(user, action.value, button["value"], block_id="turns")
    for key in ("channel", "message", "response_url"):
        payload.pop(key)
    payload["container"] = {"type": "view", "view_id": view["id"]}
    payload["view"] = copy.deepcopy(view)
    payload["actions"][0]["text"] = button["text"]
    return payload


async def test_every_page_of_a_huge_input_can_be_read(start_worker, make_approver, slack):
    worker = await start_worker()
    approver = await make_approver()
    content = "".join(f"line {i:06d} & <tag> 🚀\n" for i in range(40_000))  # ~1 MB
    tool_input = {"file_path": "/tmp/big.txt", "content": content}
    task = asyncio.create_task(approver.can_use_tool("Write", tool_input, context("toolu_pages")))
    message = await posted(slack)

    await worker.click("U_ALICE", Action.VIEW_INPUT, message)
    update = await slack.wait_for_call("views.update")
    view_id = update.args["view_id"]
    pages = [slack.views[view_id]]
    while "Next page" in json.dumps(pages[-1]):
        updates = len(slack.calls_to("views.update"))
        await worker.post_signed(_turn("U_ALICE", pages[-1], Action.INPUT_NEXT))
        turned = await slack.wait_for_call("views.update", count=updates + 1)
        assert turned.ok and turned.args["view_id"] == view_id  # the same modal, no new trigger
        pages.append(slack.views[view_id])
        assert len(pages) < 50
    assert len(pages) > 2
    assert all(view_errors(page) == [] for page in pages)
    assert "".join(_code(page) for page in pages) == json.dumps(tool_input, indent=2, ensure_ascii=False)

    # And back.
    updates = len(slack.calls_to("views.update"))
    await worker.post_signed(_turn("U_ALICE", pages[-1], Action.INPUT_PREVIOUS))
    await slack.wait_for_call("views.update", count=updates + 1)
    assert _code(slack.views[view_id]) == _code(pages[-2])
    assert slack.invalid == []
    assert not task.done()  # looking decides nothing
    await cancelled(task)


async def test_a_page_turn_slack_refuses_is_still_acknowledged(start_worker, make_approver, slack):
    """views.update is Tier 4, shared by every worker: a 429 on a page turn (or a view closed
    meanwhile) raises after ack(); with process_before_response the listener's exception
    decides the HTTP answer, and bot.edge turns it into a 400, so the person's client shows
    the click as failed, with nothing said and nothing retried."""
    worker = await start_worker()
    approver = await make_approver()
    tool_input = {"file_path": "/tmp/big.txt", "content": "x" * 400_000}
    task = asyncio.create_task(approver.can_use_tool("Write", tool_input, context("toolu_page_429")))
    message = await posted(slack)
    await worker.click("U_ALICE", Action.VIEW_INPUT, message)
    update = await slack.wait_for_call("views.update")
    first_page = slack.views[update.args["view_id"]]
    assert "Next page" in json.dumps(first_page)

    slack.rate_limit("views.update", retry_after=30)
    response = await worker.post_signed(_turn("U_ALICE", first_page, Action.INPUT_NEXT))
    assert response.status == 200, f"Slack got HTTP {response.status} for a click on Next page"
    await cancelled(task)
