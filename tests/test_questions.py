"""Claude's clarifying questions (AskUserQuestion) answered through a Slack form."""

from __future__ import annotations

import asyncio
import copy
import json

import pytest

from bot import text as texts
from bot.approvals import questions
from bot.approvals.model import State, request_id_for
from bot.slack import limits
from bot.slack.block_kit_check import view_errors
from bot.slack.blocks.kit import text_size
from bot.slack.blocks.modals import answer_modal
from bot.slack.blocks.question import answer_menu, menu_answer
from bot.slack.blocks.request_message import request_message
from bot.slack.ids import (
    CHOICE_INPUT,
    OWN_ANSWER_INPUT,
    Action,
    Modal,
    actions_block,
    choice_block,
    own_answer_block,
)
from tests.audit_streams import audit_stream
from tests.conftest import cancelled, context, policy_file, posted
from tests.fakes.slack_block_actions import static_select_action
from tests.fakes.slack_view_payloads import view_submission

ASKED = {
    "questions": [
        {
            "question": "Which environment?",
            "header": "Env",
            "multiSelect": False,
            "options": [
                {"label": "staging", "description": "safe"},
                {"label": "prod", "description": "live"},
            ],
        },
        {
            "question": "Which checks?",
            "header": "Checks",
            "multiSelect": True,
            "options": [
                {"label": "lint", "description": "style"},
                {"label": "tests", "description": "unit"},
                {"label": "smoke", "description": "after deploy"},
            ],
        },
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
    assert result.updated_input == {
        **ASKED,
        "answers": {"Which environment?": "staging", "Which checks?": "lint, tests"},
    }

    await slack.wait_for(lambda: message.edits >= 1)
    shown = _shown(slack.message(message.channel, message.ts))
    assert "Answered by <@U_ALICE>" in shown
    assert "*Answer:* staging" in shown and "*Answer:* lint, tests" in shown
    assert "approval.answer" not in shown  # no more buttons


async def test_an_answer_of_ones_own_is_sent_as_typed(start_worker, make_approver, slack):
    worker = await start_worker()
    task, message = await _ask(make_approver, slack, "toolu_q_own")
    # "Other…" follows each question's options: index 2 for the first, 3 for the second.
    await worker.answer(
        "U_ALICE", message, chosen={0: [2], 1: [2, 3]}, typed={0: "the qa cluster", 1: "load test"}
    )
    result = await asyncio.wait_for(task, 5)
    assert result.updated_input["answers"] == {
        "Which environment?": "the qa cluster",
        "Which checks?": "smoke, load test",
    }


async def test_every_question_must_be_answered_once(start_worker, make_approver, slack):
    worker = await start_worker()
    task, message = await _ask(make_approver, slack, "toolu_q_missing")

    # Slack's client refuses an empty required choice; a forged or old form is refused here too.
    ack = await worker.answer("U_ALICE", message, chosen={0: [1]})
    assert ack["response_action"] == "errors"
    assert ack["errors"] == {choice_block(1): "Choose an answer."}
    ack = await worker.answer("U_ALICE", message, chosen={0: [1], 1: [0]}, typed={0: "prod, but carefully"})
    assert ack["errors"] == {
        own_answer_block(0): "To send this answer, choose “Other…” above; or clear this field."
    }
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


@pytest.mark.parametrize(
    "tool_input",
    [
        {"questions": []},
        {"questions": [{"question": "Q?", "options": []}]},
        {"questions": "not a list"},
        {},
    ],
)
def test_malformed_questions_fall_back_to_an_ordinary_approval(tool_input):
    assert questions.parse("AskUserQuestion", tool_input) is None


# -- One single-select question: answered from a menu on the message ------------------------------

LONG_LABEL = "production, the cluster our customers use, once the change-advisory board has signed off"
ONE = {
    "questions": [
        {
            "question": "Which environment?",
            "header": "Env",
            "multiSelect": False,
            "options": [
                {"label": "staging", "description": "safe"},
                {"label": LONG_LABEL, "description": "live"},
            ],
        },
    ]
}
ONLY_ALICE = """
rules:
  - name: questions
    tool: AskUserQuestion
    approvers: [U0ALICE]
"""


def _menu(message) -> dict | None:
    for block in message.blocks:
        for element in block.get("elements", []):
            if element.get("type") == "static_select":
                return element
    return None


def _labels(message) -> list[str]:
    return [
        e["text"]["text"] for b in message.blocks for e in b.get("elements", []) if e.get("type") == "button"
    ]


async def choose(worker, user: str, message, value: str, *, forged: bool = False):
    """Pick the option with ``value`` in the message's menu, as Slack sends it."""
    payload = static_select_action(
        user,
        Action.CHOOSE_ANSWER.value,
        value,
        message=message.as_dict(),
        channel=message.channel,
        user_name=user.lower(),
        forged=forged,
    )
    response = await worker.post_signed(payload)
    assert response.status == 200, response.status
    return payload


async def _ask_one(make_approver, slack, tool_use_id: str):
    approver = await make_approver(agent_name="release-bot")
    task = asyncio.create_task(approver.can_use_tool("AskUserQuestion", ONE, context(tool_use_id)))
    return task, await posted(slack)


async def test_one_single_select_question_is_answered_from_a_menu_on_the_message(
    start_worker, make_approver, slack
):
    worker = await start_worker()
    task, message = await _ask_one(make_approver, slack, "toolu_menu")
    menu = _menu(message)
    assert menu is not None and menu["action_id"] == Action.CHOOSE_ANSWER.value
    assert [o["value"] for o in menu["options"]] == ["0", "1"]
    assert next(o["text"]["text"] for o in menu["options"]) == "staging"
    assert all(len(o["text"]["text"]) <= 75 for o in menu["options"])  # Slack's limit; the label is longer
    # One pick answers; Other… is a button, which a client's sticky menu choice cannot swallow.
    assert _labels(message) == ["Other…", "Decline"]

    await choose(worker, "U_ALICE", message, "1")
    result = await asyncio.wait_for(task, 5)
    assert result.behavior == "allow"
    # The whole label, from the stored question, not the cut one the menu shows.
    assert result.updated_input == {**ONE, "answers": {"Which environment?": LONG_LABEL}}
    await slack.wait_for(lambda: message.edits >= 1)
    assert "Answered by <@U_ALICE>" in _shown(message)
    assert _menu(message) is None and _labels(message) == []


async def test_several_questions_or_several_picks_keep_the_form(start_worker, make_approver, slack):
    await start_worker()
    task, message = await _ask(make_approver, slack, "toolu_form")
    assert _menu(message) is None and _labels(message) == ["Answer…", "Decline"]
    await cancelled(task)

    picks = {"questions": [{**ONE["questions"][0], "multiSelect": True}]}
    asked = questions.parse("AskUserQuestion", picks)
    assert asked is not None and answer_menu(asked) is None
    assert answer_menu(questions.parse("AskUserQuestion", ONE) or []) is not None


@pytest.mark.parametrize("value", ["2", "7", "-1", "1.0", "²", "other2", "", "0" * 75])
async def test_a_pick_that_is_not_an_option_changes_nothing(start_worker, make_approver, slack, store, value):
    worker = await start_worker()
    task, message = await _ask_one(make_approver, slack, f"toolu_forged_{len(value)}_{value.encode().hex()}")
    await choose(worker, "U_ALICE", message, value, forged=True)
    if value:  # an empty value is malformed for Slack: ignored without a word
        await slack.wait_for(lambda: slack.ephemerals)
        [note] = slack.ephemerals
        assert (note.user, note.text) == ("U_ALICE", texts.refusals.NOT_AN_OPTION)
    await asyncio.sleep(0.1)
    assert not task.done() and message.edits == 0
    request = await store.get(request_id_for(f"toolu_forged_{len(value)}_{value.encode().hex()}"))
    assert request.state is State.PENDING
    await cancelled(task)


async def test_a_pick_naming_a_request_that_is_no_question_approves_nothing(
    start_worker, make_approver, slack, store
):
    worker = await start_worker()
    task, question = await _ask_one(make_approver, slack, "toolu_q_one")
    approver = await make_approver()
    command = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "rm -rf /srv"}, context("toolu_rm_srv"))
    )
    await posted(slack, 2)
    # A stale or forged client: the menu's block made to name the Bash request.
    payload = static_select_action("U_ALICE", Action.CHOOSE_ANSWER.value, "0", message=question.as_dict())
    payload["actions"][0]["block_id"] = actions_block(request_id_for("toolu_rm_srv"), 0)
    assert (await worker.post_signed(payload)).status == 200
    await slack.wait_for(lambda: slack.ephemerals)
    assert [n.text for n in slack.ephemerals] == [texts.refusals.NOT_AN_OPTION]
    assert (await store.get(request_id_for("toolu_rm_srv"))).state is State.PENDING
    assert not command.done() and not task.done()
    await cancelled(task, command)


async def test_a_non_approvers_pick_is_refused_and_an_approvers_is_the_answer(
    tmp_path, start_worker, make_approver, slack
):
    worker = await start_worker(approval_policy=policy_file(tmp_path, ONLY_ALICE))
    task, message = await _ask_one(make_approver, slack, "toolu_menu_rules")
    await choose(worker, "U0MALLORY", message, "0")
    await slack.wait_for(lambda: slack.ephemerals)
    [note] = slack.ephemerals
    assert note.user == "U0MALLORY" and note.text.startswith("You are not an approver for this request.")
    await asyncio.sleep(0.1)
    assert not task.done() and message.edits == 0

    await choose(worker, "U0ALICE", message, "0")
    assert (await asyncio.wait_for(task, 5)).updated_input["answers"] == {"Which environment?": "staging"}


async def test_other_opens_the_form_and_a_typed_answer_is_sent_as_typed(start_worker, make_approver, slack):
    worker = await start_worker()
    task, message = await _ask_one(make_approver, slack, "toolu_menu_other")
    await worker.click("U_ALICE", Action.ANSWER, message)  # the Other… button
    update = await slack.wait_for_call("views.update")
    view = slack.views[update.args["view_id"]]
    assert view["callback_id"] == Modal.ANSWER.value
    [choice] = [b["element"] for b in view["blocks"] if b.get("block_id") == choice_block(0)]
    assert choice["initial_option"]["text"]["text"] == "Other…"  # the choice its button made
    assert not task.done()  # opening the form decides nothing
    payload = view_submission(
        "U_ALICE",
        Modal.ANSWER.value,
        view["private_metadata"],
        # In the form, "Other…" follows the question's options (index 2 here) and takes the typed answer.
        {
            choice_block(0): {CHOICE_INPUT: {"type": "static_select", "selected_option": {"value": "2"}}},
            own_answer_block(0): {OWN_ANSWER_INPUT: "the qa cluster"},
        },
        view=view,
    )
    assert (await worker.post_signed(payload)).status == 200
    result = await asyncio.wait_for(task, 5)
    assert result.updated_input == {**ONE, "answers": {"Which environment?": "the qa cluster"}}


async def test_a_second_pick_after_the_answer_changes_nothing(start_worker, make_approver, slack, store):
    worker = await start_worker()
    task, message = await _ask_one(make_approver, slack, "toolu_menu_twice")
    shown_before = copy.deepcopy(message)  # what a second person's client still shows
    await choose(worker, "U_ALICE", message, "0")
    assert (await asyncio.wait_for(task, 5)).updated_input["answers"] == {"Which environment?": "staging"}

    await choose(worker, "U_BOB", shown_before, "1")
    await slack.wait_for(lambda: slack.ephemerals)
    [note] = slack.ephemerals
    assert note.user == "U_BOB" and "already" in note.text.lower()
    request = await store.get(request_id_for("toolu_menu_twice"))
    assert request.state is State.ANSWERED and request.updated_input["answers"] == {
        "Which environment?": "staging"
    }


@pytest.mark.slow
async def test_end_to_end_the_model_receives_the_label_picked_in_the_menu(
    tmp_path, monkeypatch, start_worker, make_approver, slack
):
    """The real Agent SDK and CLI: a refused pick, the form opened by Other…, then the answer, once."""
    from bot.demo.scripted_model import text, tool_use
    from tests.fakes.agent_env import clean_agent_env
    from tests.test_agent_e2e import run_agent

    clean_agent_env(monkeypatch)
    worker = await start_worker(approval_policy=policy_file(tmp_path, ONLY_ALICE))
    approver = await make_approver()

    async def pick_when_posted() -> None:
        message = await posted(slack)
        shown = copy.deepcopy(message)
        await choose(worker, "U0MALLORY", message, "0")
        await slack.wait_for(lambda: slack.ephemerals)
        await worker.click("U0ALICE", Action.ANSWER, message)  # Other…
        update = await slack.wait_for_call("views.update")
        assert slack.views[update.args["view_id"]]["callback_id"] == Modal.ANSWER.value
        await choose(worker, "U0ALICE", message, "1")
        await slack.wait_for(lambda: message.edits >= 1)
        await choose(worker, "U0ALICE", shown, "0")  # a second pick, from a client not yet updated
        await slack.wait_for(lambda: len(slack.ephemerals) == 2)

    picker = asyncio.create_task(pick_when_posted())
    model = await run_agent(
        tmp_path, approver, [tool_use("AskUserQuestion", ONE), text("thanks")], tools=["AskUserQuestion"]
    )
    await asyncio.wait_for(picker, 10)

    [result] = model.tool_results()
    assert not result.is_error
    assert result.content.startswith(
        f'Your questions have been answered: "Which environment?"="{LONG_LABEL}".'
    )
    refused, too_late = slack.ephemerals
    assert refused.user == "U0MALLORY" and refused.text.startswith("You are not an approver")
    assert too_late.user == "U0ALICE" and "already" in too_late.text.lower()


HOSTILE_LABEL = "<!channel> <@U1> ``` *b* & " + "&" * 100 + "🚀" * 60


@pytest.mark.parametrize("options", [2, 10])
@pytest.mark.parametrize("label", ["short", "x" * 500, HOSTILE_LABEL])
def test_the_menu_stays_within_slacks_limits_and_maps_back_to_whole_labels(options, label):
    from bot.slack.block_kit_check import message_blocks_errors
    from tests.test_blocks import request

    asked = {
        "questions": [
            {
                "question": f"Pick {label}",
                "header": "Pick",
                "multiSelect": False,
                "options": [{"label": f"{i} {label}", "description": label} for i in range(options)],
            }
        ]
    }
    req = request("AskUserQuestion", asked)
    message = request_message(req)
    assert message_blocks_errors(message.blocks) == []
    menu = _menu(message)
    assert menu is not None and len(menu["options"]) == options <= limits.SELECT_OPTIONS
    assert all(
        len(o["text"]["text"]) <= limits.OPTION_TEXT and len(o["value"]) <= limits.OPTION_TEXT
        for o in menu["options"]
    )
    last = str(options - 1)
    assert menu_answer(req, last) == {**asked, "answers": {f"Pick {label}": f"{last} {label}"}}
    for refused in (str(options), "other", "-1", f"0{last}", " 0", ""):
        assert menu_answer(req, refused) is None, refused
    # Not a menu request, whatever the pick: a Bash command, or two questions.
    assert menu_answer(request("Bash", {"command": "rm -rf /"}), "0") is None
    assert menu_answer(request("AskUserQuestion", ASKED), "0") is None


def _form_request():
    import time

    from bot.approvals.model import ApprovalRequest, State

    return ApprovalRequest(
        id="0123456789abcdef01234567",
        state=State.PENDING,
        tool_name="AskUserQuestion",
        tool_input=ASKED,
        input_hash="h",
        created_at=time.time(),
    )


def test_the_form_shows_each_question_once_and_marks_only_what_is_optional():
    form = answer_modal(_form_request())
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


@pytest.mark.parametrize(
    "chosen, typed, expected",
    [
        ({0: [1], 1: [0, 2]}, {}, {"Which environment?": "prod", "Which checks?": "lint, smoke"}),
        ({0: [2], 1: [3]}, {0: " qa ", 1: "fuzz"}, {"Which environment?": "qa", "Which checks?": "fuzz"}),
        ({0: [0], 1: [1, 3]}, {1: "fuzz"}, {"Which environment?": "staging", "Which checks?": "tests, fuzz"}),
        ({0: [0, 1], 1: [1, 1]}, {}, {"Which environment?": "staging", "Which checks?": "tests"}),
    ],
)
def test_answers_are_what_the_sdk_expects(chosen, typed, expected):
    asked = questions.parse("AskUserQuestion", ASKED)
    assert questions.answers(asked, chosen, typed) == expected


@pytest.mark.parametrize(
    "chosen, typed, problems",
    [
        ({}, {}, {0: questions.Problem.NO_CHOICE, 1: questions.Problem.NO_CHOICE}),
        ({0: [2], 1: [0]}, {}, {0: questions.Problem.OTHER_WITHOUT_TEXT}),
        ({0: [0], 1: [0]}, {1: "also this"}, {1: questions.Problem.TEXT_WITHOUT_OTHER}),
        ({0: [9], 1: [0]}, {}, {0: questions.Problem.NO_CHOICE}),
    ],
)
def test_answers_the_form_cannot_send(chosen, typed, problems):
    asked = questions.parse("AskUserQuestion", ASKED)
    with pytest.raises(questions.InvalidAnswers) as raised:
        questions.answers(asked, chosen, typed)
    assert raised.value.errors == problems


async def test_other_is_a_button_so_closing_its_form_leaves_the_way_back(start_worker, make_approver, slack):
    """Slack's clients keep a menu's choice and send nothing when it is picked again: were
    *Other…* an option, closing its form would leave picking a listed option (an answer
    nobody meant) as the only way back. As a button it opens the form every time."""
    worker = await start_worker()
    task, message = await _ask_one(make_approver, slack, "toolu_other_twice")
    for opened in (1, 2):
        await worker.click("U_ALICE", Action.ANSWER, message)  # the Other… button; then the form is closed
        await slack.wait_for(lambda opened=opened: len(slack.calls_to("views.update")) >= opened)
        view = slack.views[slack.calls_to("views.update")[-1].args["view_id"]]
        assert view["callback_id"] == Modal.ANSWER.value
    assert not task.done() and message.edits == 0  # nothing was answered
    assert _menu(message) is not None
    await cancelled(task)


# -- N-of-M: each answer is a vote; the answer is the one enough people agree on -------------------

TWO_MUST_AGREE = """
rules:
  - name: questions need two
    tool: AskUserQuestion
    approvers: [U0ALICE, U0BOB, U0CAROL]
    required_approvals: 2
"""


async def _audit(redis, request_id: str) -> list[tuple[str, str, str]]:
    """(event, actor, votes) of the request's audit entries, oldest first."""

    return [
        (f[b"event"].decode(), f[b"actor"].decode(), f.get(b"votes", b"").decode())
        for _id, f in await audit_stream(redis)
        if f[b"request"] == request_id.encode()
    ]


async def _two_must_agree(tmp_path, start_worker, make_approver, slack, tool_use_id: str, asked: dict = ONE):
    worker = await start_worker(approval_policy=policy_file(tmp_path, TWO_MUST_AGREE))
    approver = await make_approver(agent_name="release-bot")
    task = asyncio.create_task(approver.can_use_tool("AskUserQuestion", asked, context(tool_use_id)))
    return worker, task, await posted(slack)


async def test_a_menu_pick_does_not_answer_a_question_whose_rule_needs_two_people(
    tmp_path, start_worker, make_approver, slack, store
):
    """The rule says two people must agree; the card says "0 of 2"; one pick in the
    menu (as one form submission before it) must not allow the AskUserQuestion call alone."""
    worker, task, message = await _two_must_agree(
        tmp_path, start_worker, make_approver, slack, "toolu_two_answer"
    )
    assert "0 of 2" in json.dumps(message.blocks)  # what the card promises

    await choose(worker, "U0ALICE", message, "0")
    # Whatever the bot does with the pick, the message changes (a vote, or the answer) or Alice is told why not.
    await slack.wait_for(lambda: message.edits >= 1 or slack.ephemerals)
    request_now = await store.get(request_id_for("toolu_two_answer"))
    assert request_now.state is State.PENDING, "one person answered a question the rule gives to two"
    assert not task.done()
    await cancelled(task)


async def test_two_people_picking_the_same_answer_answer_it(
    tmp_path, start_worker, make_approver, slack, redis
):
    worker, task, message = await _two_must_agree(tmp_path, start_worker, make_approver, slack, "toolu_agree")
    await choose(worker, "U0ALICE", message, "1")
    await slack.wait_for(lambda: message.edits >= 1)
    # The card shows what Alice proposed, who agreed so far, and how to agree.
    shown = _shown(message)
    assert f"*Proposed answer:* {LONG_LABEL}" in shown
    assert "*Agreed:* 1 of 2: <@U0ALICE>" in shown
    assert f"Proposed by <@U0ALICE>. {texts.message.AGREE_BY_MENU}" in shown
    assert _menu(message) is not None and not task.done()

    await choose(worker, "U0BOB", message, "1")
    result = await asyncio.wait_for(task, 5)
    assert result.behavior == "allow"
    assert result.updated_input == {**ONE, "answers": {"Which environment?": LONG_LABEL}}
    await slack.wait_for(lambda: message.edits >= 2)
    shown = _shown(message)
    assert "Answered by <@U0ALICE> and <@U0BOB>" in shown and f"*Answer:* {LONG_LABEL}" in shown
    assert "Proposed" not in shown and _menu(message) is None
    decided = [e for e in await _audit(redis, request_id_for("toolu_agree")) if e[0].startswith("answer")]
    assert decided == [("answer_proposed", "U0ALICE", "1/2"), ("answered", "U0BOB", "")]


async def test_a_different_answer_replaces_the_proposal_and_starts_the_count_again(
    tmp_path, start_worker, make_approver, slack, store, redis
):
    worker, task, message = await _two_must_agree(
        tmp_path, start_worker, make_approver, slack, "toolu_disagree"
    )
    before_any = copy.deepcopy(message)  # a client that never saw a proposal
    await choose(worker, "U0ALICE", message, "0")
    await slack.wait_for(lambda: message.edits >= 1)
    await choose(worker, "U0BOB", message, "1")  # Bob disagrees: his answer replaces Alice's
    await slack.wait_for(lambda: message.edits >= 2)
    shown = _shown(message)
    assert f"*Proposed answer:* {LONG_LABEL}" in shown and "*Proposed answer:* staging" not in shown
    assert "*Agreed:* 1 of 2: <@U0BOB>" in shown and "Proposed by <@U0BOB>." in shown
    assert not task.done()

    # A pick from a client still showing the card before any proposal votes on nothing it saw.
    await choose(worker, "U0CAROL", before_any, "1")
    await slack.wait_for(lambda: slack.ephemerals)
    [note] = slack.ephemerals
    assert note.user == "U0CAROL" and note.text.startswith("Someone proposed other answers")
    assert (await store.get(request_id_for("toolu_disagree"))).state is State.PENDING

    # Alice's earlier vote was for "staging": it does not count for Bob's answer. Carol's does.
    await choose(worker, "U0CAROL", message, "1")
    result = await asyncio.wait_for(task, 5)
    assert result.updated_input == {**ONE, "answers": {"Which environment?": LONG_LABEL}}
    request = await store.get(request_id_for("toolu_disagree"))
    assert request.state is State.ANSWERED and {v.user for v in request.votes} == {"U0BOB", "U0CAROL"}
    decided = [e for e in await _audit(redis, request.id) if e[0].startswith("answer")]
    assert decided == [
        ("answer_proposed", "U0ALICE", "1/2"),
        ("answer_proposed", "U0BOB", "1/2"),
        ("answered", "U0CAROL", ""),
    ]


async def test_the_same_person_picking_twice_counts_once(tmp_path, start_worker, make_approver, slack, store):
    worker, task, message = await _two_must_agree(
        tmp_path, start_worker, make_approver, slack, "toolu_twice_same"
    )
    await choose(worker, "U0ALICE", message, "0")
    await slack.wait_for(lambda: message.edits >= 1)
    await choose(worker, "U0ALICE", message, "0")
    await slack.wait_for(lambda: slack.ephemerals)
    [note] = slack.ephemerals
    assert (
        note.user == "U0ALICE"
        and note.text == "You already gave this answer. It needs 2 different people to agree on it."
    )
    request = await store.get(request_id_for("toolu_twice_same"))
    assert request.state is State.PENDING and [v.user for v in request.votes] == ["U0ALICE"]
    assert not task.done() and "*Agreed:* 1 of 2: <@U0ALICE>" in _shown(message)
    await cancelled(task)


async def test_a_form_opened_before_another_answer_is_refused_and_a_fresh_one_agrees(
    tmp_path, start_worker, make_approver, slack, store
):
    """Two questions keep the form. Bob opens it; Alice proposes answers meanwhile; Bob's form,
    sent as it was, would vote on answers he never saw: it is refused. Sent again, it agrees."""
    worker, task, message = await _two_must_agree(
        tmp_path, start_worker, make_approver, slack, "toolu_stale_form", ASKED
    )
    assert "*Agreed:* 0 of 2" in _shown(message)
    await worker.click("U0BOB", Action.ANSWER, message)
    update = await slack.wait_for_call("views.update")
    bobs_form = slack.views[update.args["view_id"]]
    assert bobs_form["private_metadata"].endswith(".0")  # the revision it shows

    chosen = {0: [1], 1: [0, 2]}
    assert await worker.answer("U0ALICE", message, chosen=chosen) == {}
    await slack.wait_for(lambda: message.edits >= 1)
    shown = _shown(message)
    assert "*Proposed answer:* prod" in shown and "*Proposed answer:* lint, smoke" in shown
    assert f"Proposed by <@U0ALICE>. {texts.message.AGREE_BY_FORM}" in shown

    values = {
        choice_block(0): {
            CHOICE_INPUT: {
                "type": "static_select",
                "selected_option": bobs_form["blocks"][0]["element"]["options"][1],
            }
        },
        own_answer_block(0): {OWN_ANSWER_INPUT: ""},
        choice_block(1): {
            CHOICE_INPUT: {
                "type": "checkboxes",
                "selected_options": [bobs_form["blocks"][2]["element"]["options"][i] for i in (0, 2)],
            }
        },
        own_answer_block(1): {OWN_ANSWER_INPUT: ""},
    }
    payload = view_submission(
        "U0BOB", Modal.ANSWER.value, bobs_form["private_metadata"], values, view=bobs_form
    )
    response = await worker.post_signed(payload)
    ack = json.loads(await response.text())
    assert ack["response_action"] == "update"
    assert "Someone proposed other answers" in json.dumps(ack["view"])
    assert (await store.get(request_id_for("toolu_stale_form"))).state is State.PENDING and not task.done()

    assert await worker.answer("U0BOB", message, chosen=chosen) == {}
    result = await asyncio.wait_for(task, 5)
    assert result.updated_input == {
        **ASKED,
        "answers": {"Which environment?": "prod", "Which checks?": "lint, smoke"},
    }


async def test_the_requester_may_answer_their_own_agents_question_as_before(
    tmp_path, start_worker, make_approver, slack, store
):
    """An answer is not an approval of one's own call: the person the agent acts for may give
    one of the votes (the rule still needs another person to agree)."""
    worker = await start_worker(approval_policy=policy_file(tmp_path, TWO_MUST_AGREE))
    approver = await make_approver(requested_by="U0ALICE")
    task = asyncio.create_task(approver.can_use_tool("AskUserQuestion", ONE, context("toolu_own_question")))
    message = await posted(slack)
    await choose(worker, "U0ALICE", message, "0")
    await slack.wait_for(lambda: message.edits >= 1)
    assert not task.done() and slack.ephemerals == []
    await choose(worker, "U0BOB", message, "0")
    assert (await asyncio.wait_for(task, 5)).updated_input["answers"] == {"Which environment?": "staging"}


async def test_an_answer_without_answers_is_refused_by_the_store(store):
    """DECIDE's ``{'invalid', 'answers'}``: a person's answer that carries no input would end the
    request allowed with the question unanswered."""
    from bot.approvals.model import Decision, NewRequest, Refusal

    created, _ = await store.create(NewRequest(id="a" * 24, tool_name="AskUserQuestion", tool_input=ONE))
    transition = await store.decide(created.id, Decision(State.ANSWERED, actor="U0ALICE", revision=0))
    assert transition.refused is Refusal.INVALID
    assert (await store.get(created.id)).state is State.PENDING


def _proposed(label: str, votes: int = 1):
    from dataclasses import replace

    from bot.approvals.model import Vote
    from tests.test_blocks import request

    asked = {
        "questions": [
            {
                "question": label,
                "header": "Pick",
                "multiSelect": False,
                "options": [{"label": f"{i} {label}", "description": label} for i in range(4)],
            }
        ]
    }
    req = request("AskUserQuestion", asked)
    return replace(
        req,
        required=2,
        edited_by="U0ALICE",
        revision=1,
        updated_input={**asked, "answers": {label: f"3 {label}"}},
        votes=tuple(Vote(user=f"U0{i}", name=label, at=float(i)) for i in range(votes)),
    )


@pytest.mark.parametrize("label", ["short", "x" * 3000, HOSTILE_LABEL * 20])
def test_a_proposed_answer_on_the_card_stays_within_slacks_limits(label):
    from bot.slack.block_kit_check import message_blocks_errors

    message = request_message(_proposed(label))
    assert message_blocks_errors(message.blocks) == []
    assert text_size(message.blocks) <= limits.MESSAGE_TEXT_BUDGET
    shown = _shown(message)
    assert "*Proposed answer:* 3 " in shown and "Proposed by <@U0ALICE>." in shown
    proposal = next(b for b in message.blocks if "Proposed answer" in json.dumps(b))
    # An answer made of the model's labels is escaped and set verbatim: it cannot ping anyone.
    assert proposal["text"]["verbatim"] is True and "<!channel>" not in proposal["text"]["text"]


def test_a_question_that_expires_while_people_disagree_tells_the_model_how_far_they_got():
    from dataclasses import replace

    expired = replace(_proposed("Which environment?"), state=State.EXPIRED, decided_at=1.0)
    told = texts.decision.deny_message(expired, [], frozenset())
    assert "1 of the 2 people it needed had agreed on an answer." in told and "approvals" not in told
