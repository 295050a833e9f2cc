"""An attacker's review of issue 15's work (a3cf6aa..): each test shows one finding.

These tests fail on the reviewed code on purpose: each one states what the
product promises and shows, through the real components (a worker on real
Redis, the fake Slack, signed payloads in Slack's shapes, the real block
builders checked by the fake's own validation), where it does not hold yet.
"""

from __future__ import annotations

import asyncio
import gc
import json
import tracemalloc

from bot.approvals.model import State
from bot.slack import blocks, limits
from bot.slack.ids import Action, Modal
from tests.conftest import cancelled, context, posted
from tests.fakes.slack_api import blocks_text_length, message_blocks_errors
from tests.test_full_input_pages import _turn
from tests.test_message_budget import flood, request
from tests.test_questions import ONE, choose

# -- 2. A page turn in "View full input" that Slack refuses is answered 400 ----------------------


# -- 3. The paged full-input cache holds many times each huge input in memory ----------------------


def test_turning_pages_of_huge_inputs_does_not_keep_them_in_memory():
    """``blocks._input_pages`` is an lru_cache of 8 whole inputs *and* all their rendered pages:
    about 25 bytes kept per input character (8 inputs of 1 MB keep ~100 MB in every worker, 2 MB
    ones ~200 MB; inputs have no size cap), and each miss re-splits the input in a Python loop on
    the event loop (~0.2 s per MB here, during which no click on that worker is acknowledged)."""
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(8):
            huge = request("Bash", {"command": flood("mixed", 1_000_000) + str(i)})
            blocks.full_input_modal(huge, 1)  # someone opens View full input and turns a page
            del huge
        gc.collect()
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    kept_mb = (kept - before) / 2**20
    assert kept_mb < 16, f"{kept_mb:.0f} MB kept after the modals were built (the requests are gone)"


# -- 4. A changed field's key can close the before/after code fences ------------------------------


def test_a_changed_keys_backticks_cannot_close_the_before_after_fences():
    """The key is escaped but its backticks are not broken: ``` in a key (chosen by the agent)
    closes the card's "before" fence, so the values render as mrkdwn outside the code blocks."""
    key = "``` *Approved by security*"
    before, after = {key: "rm -rf /srv/old", "x": 1}, {key: "echo kept", "x": 1}
    for state in (State.PENDING, State.APPROVED):
        message = blocks.request_message(request("mcp__files__clean", before, state, updated_input=after))
        [diff] = [b["text"]["text"] for b in message.blocks
                  if b["type"] == "section" and "before:" in b["text"].get("text", "")]
        assert diff.count("```") == 4, f"the fences of the before/after are unbalanced: {diff!r}"


# -- 5. /approvals can exceed Slack's text budget -------------------------------------------------


def test_the_approvals_list_fits_slacks_text_budget_with_long_tool_names():
    """20 lines of ~560 characters (tool name 150, summary 200, agent 100, the link into the
    workspace and the date) exceed ``limits.MESSAGE_TEXT_BUDGET``: the list is not cut to fit,
    and Slack refuses the /approvals answer (msg_blocks_too_long) from about 128-character MCP
    tool names on."""
    waiting = [
        request(tool_name="mcp__" + "x" * 95, tool_input={"command": "&" * 500}, agent="a" * 100,
                posted_channel="C0APPROVALS", ts=f"1700000000.{i:06d}")
        for i in range(25)
    ]
    listing = blocks.pending_list(waiting, "https://fake-team.slack.com/")
    assert message_blocks_errors(listing.blocks) == []
    assert blocks_text_length(listing.blocks) <= limits.MESSAGE_TEXT_BUDGET


# -- 6. A long question squeezes the paging line: the on-call group is not paged ------------------


def test_a_long_question_cannot_push_the_paged_people_off_the_card():
    """Mentions come from the policy, but the paging line is cut to ``_Room.line`` like untrusted
    text: an agent whose question is long enough (4 questions of 10 long options) drives the
    message to its smallest room, and the line keeps 8 of 13 people; the on-call user group,
    last, is dropped (and so is "Who can decide" in the same way)."""
    asked = {"questions": [
        {"question": f"{i} " + "q" * 3000, "header": "Pick", "multiSelect": False,
         "options": [{"label": f"{j} " + "x" * 300, "description": "d" * 400} for j in range(10)]}
        for i in range(4)
    ]}
    paged = tuple(f"U0ONCALL{i:02d}" for i in range(12)) + ("S0SRETEAM",)
    message = blocks.request_message(request("AskUserQuestion", asked, mention=paged, approvers=paged))
    assert message_blocks_errors(message.blocks) == []
    paging = message.blocks[1]["text"]["text"]
    missing = [target for target in paged if target not in paging]
    assert missing == [], f"not paged on the card: {missing}"
