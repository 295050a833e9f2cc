"""*View full input* shows all of a huge input: Next and Previous turn the pages of the same modal."""

from __future__ import annotations

import asyncio
import copy
import gc
import html
import json
import re
import tracemalloc

import pytest

from bot import text
from bot.approvals.model import State
from bot.slack import limits, mrkdwn
from bot.slack.block_kit_check import view_errors
from bot.slack.blocks.full_input import _page_starts, full_input_modal
from bot.slack.ids import Action
from tests.conftest import cancelled, context, posted
from tests.fakes.slack_block_actions import block_actions
from tests.test_message_budget import flood, request

_FENCED = re.compile(r"^```\n(.*)\n```$", re.DOTALL)


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
    button = next(
        e
        for b in view["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == action.value
    )
    payload = block_actions(user, action.value, button["value"], block_id="turns")
    for key in ("channel", "message", "response_url"):
        payload.pop(key)
    payload["container"] = {"type": "view", "view_id": view["id"]}
    payload["view"] = copy.deepcopy(view)
    payload["actions"][0]["text"] = button["text"]
    return payload


@pytest.mark.slow
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


# -- the pages of huge inputs are not kept in memory ------------------------------------------


@pytest.mark.slow
def test_turning_pages_of_huge_inputs_does_not_keep_them_in_memory():
    """A worker remembers where the pages of an input begin, not the input nor its rendered
    pages: 8 inputs of 1 MB once kept ~100 MB in every worker (inputs have no size cap)."""
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(8):
            huge = request("Bash", {"command": flood("mixed", 1_000_000) + str(i)})
            full_input_modal(huge, 1)  # someone opens View full input and turns a page
            del huge
        gc.collect()
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    kept_mb = (kept - before) / 2**20
    assert kept_mb < 16, f"{kept_mb:.0f} MB kept after the modals were built (the requests are gone)"


def _all_pages(req) -> tuple[str, list[str], int]:
    """Every page, turned with Next as a person would: the code read, the headings seen, the count."""
    code, headings, page = [], [], 0
    while True:
        view = full_input_modal(req, page)
        assert view_errors(view) == [] and len(json.dumps(view)) <= limits.VIEW_BUDGET
        assert len(view["blocks"]) <= limits.MODAL_BLOCKS
        code.append(_code(view))
        headings += [
            b["text"]["text"]
            for b in view["blocks"]
            if b["type"] == "section"
            and b["text"]["text"] in (text.modals.FULL_INPUT_CHANGED, text.modals.FULL_INPUT_ASKED)
        ]
        following = [
            e
            for b in view["blocks"]
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"] == Action.INPUT_NEXT.value
        ]
        if not following:
            return "".join(code), headings, page + 1
        assert following[0]["value"] == f"{req.id} {page + 1}"
        page += 1


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mixed", "emoji", "amp"])
def test_every_character_is_on_exactly_one_page_wherever_the_pages_break(kind):
    """After a change there are two documents, each under its heading: whatever their sizes
    (a page may end just before the second heading, or inside either document), reading every
    page shows what runs, then what was asked, each character once and each heading once."""
    for changed in (10, 1_000, 140_000, 141_000, 142_000, 143_000, 145_000, 146_500, 300_000):
        after = {"command": flood(kind, changed)}
        before = {"command": flood(kind, 50_000) + "`" * 7_000}
        req = request("Bash", before, State.APPROVED, updated_input=after)
        whole, headings, _ = _all_pages(req)
        assert whole == json.dumps(after, indent=2, ensure_ascii=False) + json.dumps(
            before, indent=2, ensure_ascii=False
        )
        assert headings == [text.modals.FULL_INPUT_CHANGED, text.modals.FULL_INPUT_ASKED]


@pytest.mark.slow
def test_a_page_break_right_before_the_second_heading_shows_it_on_the_next_page():
    # Find sizes whose first document fills its last page exactly (found through the page starts,
    # then read as a person would).
    for size in range(100_000, 160_000, 97):
        after, before = {"command": "x" * size}, {"command": "y" * 5_000}
        req = request("Bash", before, State.APPROVED, updated_input=after)
        documents = (
            (text.modals.FULL_INPUT_CHANGED, json.dumps(after, indent=2)),
            (text.modals.FULL_INPUT_ASKED, json.dumps(before, indent=2)),
        )
        if any(start.document == 1 and start.heading for start in _page_starts(documents)):
            break
    else:
        # The case this test exists for: if the layout changes so that no size here reaches it,
        # widen the sweep rather than let the test pass without looking.
        raise AssertionError("no size in 100,000–160,000 breaks a page right before the second heading")
    whole, headings, pages = _all_pages(req)
    assert whole == json.dumps(after, indent=2) + json.dumps(before, indent=2)
    assert headings == [text.modals.FULL_INPUT_CHANGED, text.modals.FULL_INPUT_ASKED]
    last = full_input_modal(req, pages - 1)
    assert last["blocks"][1]["text"]["text"] == text.modals.FULL_INPUT_ASKED


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mixed", "emoji", "amp", "mention"])
def test_pieces_are_the_longest_that_fit(kind):
    """``mrkdwn.split`` (counted in C) cuts where a character-by-character count would: each piece's
    inert rendering fits, and one more character would not."""
    value = flood(kind, 50_000) + "`" * 9_000 + "``a" * 2_000 + "\ud800\x00é"
    for budget in (1, 5, 7, 100, 2_990):
        pieces = mrkdwn.split(value, budget)
        assert "".join(pieces) == value
        for piece, following in zip(pieces, pieces[1:] + [""], strict=True):
            assert mrkdwn.size(mrkdwn.inert_code(piece)) <= budget or len(piece) == 1
            if following:
                assert mrkdwn.size(mrkdwn.inert_code(piece + following[0])) > budget
