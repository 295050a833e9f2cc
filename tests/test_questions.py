"""Claude's clarifying questions (AskUserQuestion) answered through a Slack form."""

from __future__ import annotations

import asyncio

import pytest

from bot.approvals import questions
from bot.slack.ids import choice_block
from tests.conftest import context, posted

ASKED = {
    "questions": [
        {"question": "Which environment?", "header": "Env", "multiSelect": False,
         "options": [{"label": "staging", "description": "safe"}, {"label": "prod", "description": "live"}]},
        {"question": "Which checks?", "header": "Checks", "multiSelect": True,
         "options": [{"label": "lint", "description": "style"}, {"label": "tests", "description": "unit"},
                     {"label": "smoke", "description": "after deploy"}]},
    ]
}


def _shown(message) -> str:
    return "\n".join(str(b) for b in message.blocks)


async def _ask(make_approver, slack, tool_use_id: str):
    approver = await make_approver(agent_name="release-bot")
    task = asyncio.create_task(approver.can_use_tool("AskUserQuestion", ASKED, context(tool_use_id)))
    return task, await posted(slack)


async def test_answers_reach_the_agent_as_the_sdk_expects(start_worker, make_approver, slack):
    worker = await start_worker()
    task, message = await _ask(make_approver, slack, "toolu_q")
    shown = _shown(message)
    assert "Question from release-bot" in shown and "Which environment?" in shown and "after deploy" in shown

    ack = await worker.answer("U_ALICE", message, chosen={0: [0], 1: [0, 1]})
    assert ack == {}
    result = await asyncio.wait_for(task, 5)
    assert result.behavior == "allow"
    assert result.updated_input == {**ASKED, "answers": {"Which environment?": "staging", "Which checks?": "lint, tests"}}

    await slack.wait_for(lambda: message.edits >= 1)
    shown = _shown(slack.message(message.channel, message.ts))
    assert "Answered by <@U_ALICE>" in shown
    assert "*Answer:* staging" in shown and "*Answer:* lint, tests" in shown
    assert "approval.answer" not in shown  # no more buttons


async def test_an_answer_of_ones_own_is_sent_as_typed(start_worker, make_approver, slack):
    worker = await start_worker()
    task, message = await _ask(make_approver, slack, "toolu_q_own")
    await worker.answer("U_ALICE", message, chosen={1: [2]}, typed={0: "the qa cluster", 1: "load test"})
    result = await asyncio.wait_for(task, 5)
    assert result.updated_input["answers"] == {"Which environment?": "the qa cluster", "Which checks?": "smoke, load test"}


async def test_every_question_must_be_answered_once(start_worker, make_approver, slack):
    worker = await start_worker()
    task, message = await _ask(make_approver, slack, "toolu_q_missing")

    ack = await worker.answer("U_ALICE", message, chosen={0: [1]})
    assert ack["response_action"] == "errors"
    assert ack["errors"] == {choice_block(1): "Choose at least one option or type your own answer."}
    ack = await worker.answer("U_ALICE", message, chosen={0: [1], 1: [0]}, typed={0: "prod, but carefully"})
    assert ack["errors"] == {choice_block(0): "Choose an option or type your own answer, not both."}
    await asyncio.sleep(0.1)
    assert not task.done()


async def test_declining_tells_the_model_who_declined_and_why(start_worker, make_approver, slack):
    worker = await start_worker()
    task, message = await _ask(make_approver, slack, "toolu_q_decline")
    await worker.deny("U_BOB", message, "Ask in #releases instead.", name="bob")
    result = await asyncio.wait_for(task, 5)
    assert result.behavior == "deny"
    assert result.message == "@bob (U_BOB) declined to answer in Slack. Reason: Ask in #releases instead."


@pytest.mark.parametrize("tool_input", [
    {"questions": []},
    {"questions": [{"question": "Q?", "options": []}]},
    {"questions": "not a list"},
    {},
])
def test_malformed_questions_fall_back_to_an_ordinary_approval(tool_input):
    assert questions.parse("AskUserQuestion", tool_input) is None
