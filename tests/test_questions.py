"""Claude's clarifying questions (AskUserQuestion) answered through a Slack form."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.approvals import questions
from bot.slack import blocks
from bot.slack.ids import choice_block, own_answer_block
from tests.fakes.slack_api import view_errors
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
    # "Other…" follows each question's options: index 2 for the first, 3 for the second.
    await worker.answer("U_ALICE", message, chosen={0: [2], 1: [2, 3]}, typed={0: "the qa cluster", 1: "load test"})
    result = await asyncio.wait_for(task, 5)
    assert result.updated_input["answers"] == {"Which environment?": "the qa cluster", "Which checks?": "smoke, load test"}


async def test_every_question_must_be_answered_once(start_worker, make_approver, slack):
    worker = await start_worker()
    task, message = await _ask(make_approver, slack, "toolu_q_missing")

    # Slack's client refuses an empty required choice; a forged or old form is refused here too.
    ack = await worker.answer("U_ALICE", message, chosen={0: [1]})
    assert ack["response_action"] == "errors"
    assert ack["errors"] == {choice_block(1): "Choose an answer."}
    ack = await worker.answer("U_ALICE", message, chosen={0: [1], 1: [0]}, typed={0: "prod, but carefully"})
    assert ack["errors"] == {own_answer_block(0): "To send this answer, choose “Other…” above; or clear this field."}
    ack = await worker.answer("U_ALICE", message, chosen={0: [2], 1: [0, 3]}, typed={0: "  "})
    assert ack["errors"] == {
        own_answer_block(0): "You chose “Other…”: type your answer here.",
        own_answer_block(1): "You chose “Other…”: type your answer here.",
    }
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


def _form_request():
    import time

    from bot.approvals.model import ApprovalRequest, State

    return ApprovalRequest(
        id="0123456789abcdef01234567", state=State.PENDING, tool_name="AskUserQuestion", tool_input=ASKED,
        input_hash="h", created_at=time.time(),
    )


def test_the_form_shows_each_question_once_and_marks_only_what_is_optional():
    form = blocks.answer_modal(_form_request())
    assert view_errors(form) == []
    shown = json.dumps(form, ensure_ascii=False)
    for question in ASKED["questions"]:
        assert shown.count(question["question"]) == 1
    inputs = {b["block_id"]: b for b in form["blocks"] if b["type"] == "input"}
    # Slack adds "(optional)" to optional inputs: only the typed answer is one, and it is.
    assert [b["optional"] for b in inputs.values()] == [False, True, False, True]
    assert inputs[choice_block(0)]["element"]["type"] == "static_select"
    assert inputs[choice_block(1)]["element"]["type"] == "checkboxes"
    for index, question in enumerate(ASKED["questions"]):
        options = inputs[choice_block(index)]["element"]["options"]
        assert [o["text"]["text"] for o in options] == [o["label"] for o in question["options"]] + ["Other…"]
        assert options[-1]["value"] == str(len(question["options"]))


@pytest.mark.parametrize("chosen, typed, expected", [
    ({0: [1], 1: [0, 2]}, {}, {"Which environment?": "prod", "Which checks?": "lint, smoke"}),
    ({0: [2], 1: [3]}, {0: " qa ", 1: "fuzz"}, {"Which environment?": "qa", "Which checks?": "fuzz"}),
    ({0: [0], 1: [1, 3]}, {1: "fuzz"}, {"Which environment?": "staging", "Which checks?": "tests, fuzz"}),
    ({0: [0, 1], 1: [1, 1]}, {}, {"Which environment?": "staging", "Which checks?": "tests"}),
])
def test_answers_are_what_the_sdk_expects(chosen, typed, expected):
    asked = questions.parse("AskUserQuestion", ASKED)
    assert questions.answers(asked, chosen, typed) == expected


@pytest.mark.parametrize("chosen, typed, problems", [
    ({}, {}, {0: questions.Problem.NO_CHOICE, 1: questions.Problem.NO_CHOICE}),
    ({0: [2], 1: [0]}, {}, {0: questions.Problem.OTHER_WITHOUT_TEXT}),
    ({0: [0], 1: [0]}, {1: "also this"}, {1: questions.Problem.TEXT_WITHOUT_OTHER}),
    ({0: [9], 1: [0]}, {}, {0: questions.Problem.NO_CHOICE}),
])
def test_answers_the_form_cannot_send(chosen, typed, problems):
    asked = questions.parse("AskUserQuestion", ASKED)
    with pytest.raises(questions.InvalidAnswers) as raised:
        questions.answers(asked, chosen, typed)
    assert raised.value.errors == problems
