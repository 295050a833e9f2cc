"""The Block Kit builders: pure functions, checked against Slack's limits with slack_sdk's models."""

from __future__ import annotations

import json
import time

import pytest

from bot import text
from bot.approvals.model import ApprovalRequest, State
from bot.slack import limits, mrkdwn
from bot.slack.block_kit_check import message_blocks_errors, view_errors
from bot.slack.blocks.full_input import full_input_modal
from bot.slack.blocks.kit import Message
from bot.slack.blocks.lists import home_view, pending_list, team_rules
from bot.slack.blocks.modals import answer_modal, deny_modal, loading_modal, modify_modal, notice_modal
from bot.slack.blocks.request_message import request_message
from bot.slack.ids import Action

HOSTILE = "<!channel> <@U1> ``` *b* & \x00 \ud800 " + "🚀" * 50


def request(
    tool_name: str = "Bash", tool_input: dict | None = None, state: State = State.PENDING, **extra
) -> ApprovalRequest:
    now = time.time()
    fields = {
        "id": "0123456789abcdef01234567",
        "state": state,
        "tool_name": tool_name,
        "tool_input": tool_input if tool_input is not None else {"command": "ls"},
        "input_hash": "h",
        "created_at": now,
        "deadline": now + 60,
    }
    if state.is_final:
        fields.update(decided_by="U_ALICE", decided_by_name="alice", decided_at=now)
    fields.update(extra)
    return ApprovalRequest(**fields)


INPUTS = {
    "Bash": {"command": "make deploy", "description": "Deploy", "timeout": 600},
    "Write": {"file_path": "/srv/app/config.yml", "content": "a: 1\n" * 10},
    "Edit": {"file_path": "/srv/app.py", "old_string": "x = 1", "new_string": "x = 2", "replace_all": False},
    "MultiEdit": {"file_path": "/srv/app.py", "edits": [{"old_string": "a", "new_string": "b"}]},
    "mcp__billing__charge": {"customer": "cus_1", "amount_usd": 120.5, "items": [1, 2, 3]},
    "Empty": {},
}


def texts(message: Message) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("tool_name", list(INPUTS))
def test_every_tool_in_every_state_renders_valid_blocks(tool_name, state):
    message = request_message(request(tool_name, INPUTS[tool_name], state, reason="because"))
    assert message_blocks_errors(message.blocks) == []
    buttons = [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons == (
        [Action.APPROVE, Action.MODIFY, Action.DENY, Action.DENY_STOP] if state is State.PENDING else []
    )


def test_known_tools_show_what_a_person_cares_about():
    bash = texts(request_message(request("Bash", INPUTS["Bash"])))
    assert "make deploy" in bash and "Description: Deploy" in bash and '\\"timeout\\": 600' in bash
    write = texts(request_message(request("Write", INPUTS["Write"])))
    assert "File: /srv/app/config.yml" in write and "a: 1" in write
    edit = texts(request_message(request("Edit", INPUTS["Edit"])))
    assert "*Replace*" in edit and "x = 1" in edit and "*With*" in edit and "x = 2" in edit
    other = texts(request_message(request("mcp__billing__charge", INPUTS["mcp__billing__charge"])))
    assert '\\"amount_usd\\": 120.5' in other


def test_outcomes_say_who_and_what():
    denied = request_message(request(state=State.DENIED, reason="<!here> not now"))
    shown = texts(denied)
    assert "Denied by <@U_ALICE>" in shown
    reason_block = next(b for b in denied.blocks if "not now" in json.dumps(b))
    assert reason_block["text"]["type"] == "plain_text"  # a reason cannot ping anyone
    assert "Expired" in texts(request_message(request(state=State.EXPIRED)))
    assert "Cancelled" in texts(request_message(request(state=State.CANCELLED)))


@pytest.mark.parametrize("size", [0, 1, 2_999, 3_000, 3_001, 50_000, 2_000_000])
@pytest.mark.parametrize("filler", ["a", "&", "<", "`", "\n", HOSTILE])
def test_any_size_and_content_fits_and_says_when_cut(size, filler):
    value = (filler * (size // len(filler) + 1))[:size]
    for tool_name, tool_input in [
        ("Bash", {"command": value, "description": value}),
        ("Write", {"file_path": value, "content": value}),
        ("Edit", {"file_path": "/x", "old_string": value, "new_string": value}),
        ("mcp__x__" + "y" * 300, {"payload": value}),
    ]:
        req = request(tool_name, tool_input, agent=value, title=value, requested_by="U1")
        message = request_message(req)
        assert message_blocks_errors(message.blocks) == [], (tool_name, size, filler)
        assert len(message.text) <= limits.MESSAGE_TEXT
        cut = size > limits.PREVIEW_TEXT // 2
        has_view_button = Action.VIEW_INPUT in texts(message)
        if size > limits.SECTION_TEXT:
            assert has_view_button and "more characters" in texts(message)
        elif not cut:
            assert not has_view_button


def test_full_input_modal_is_valid_at_any_size():
    for size in [0, 10, 10_000, 500_000]:
        view = full_input_modal(request("Write", {"file_path": "/x", "content": ("&<`" * size)[:size]}))
        assert view_errors(view) == []
        assert len(view["blocks"]) <= limits.MODAL_BLOCKS
        # A large input is paged (tests/test_message_budget.py reads every page).
        assert (Action.INPUT_NEXT.value in json.dumps(view)) == (size > 100_000)


def test_modals_are_valid():
    assert view_errors(deny_modal(request())) == []
    assert view_errors(loading_modal("Full input")) == []
    assert view_errors(notice_modal("A title longer than Slack allows for modals", "x" * 5000)) == []


def test_each_modal_is_titled_for_its_action():
    question = request(
        "AskUserQuestion",
        {
            "questions": [
                {
                    "question": "Which region?",
                    "header": "Region",
                    "options": [{"label": "eu"}, {"label": "us"}],
                    "multiSelect": False,
                }
            ]
        },
    )
    denied, declined = deny_modal(request()), deny_modal(question)
    assert (denied["title"]["text"], denied["submit"]["text"]) == (text.modals.DENY_MODAL_TITLE, "Deny")
    assert (declined["title"]["text"], declined["submit"]["text"]) == ("Decline question", "Decline")
    for title in (
        text.modals.DENY_MODAL_TITLE,
        text.modals.DECLINE_MODAL_TITLE,
        text.refusals.ENDED_TITLE,
        text.refusals.NOT_ALLOWED_TITLE,
        text.modals.MODIFY_MODAL_TITLE,
        text.modals.ANSWER_MODAL_TITLE,
        text.modals.FULL_INPUT_TITLE,
    ):
        assert len(title) <= limits.MODAL_TITLE, title


def test_pending_links_use_the_workspace_url_not_slack_com():
    posted = request(posted_channel="C0APPROVALS", ts="1700000000.000100")
    listed = json.dumps(pending_list([posted], "https://acme.slack.com/").blocks)
    assert "https://acme.slack.com/archives/C0APPROVALS/p1700000000000100" in listed
    assert "slack.com/archives" not in listed.replace("acme.slack.com/archives", "")
    # Without a workspace URL the channel is named instead of a made-up link.
    unlinked = json.dumps(home_view([posted], [], None)["blocks"])
    assert "<#C0APPROVALS>" in unlinked and "archives" not in unlinked


def test_code_blocks_cannot_be_closed_by_the_input():
    code, hidden = mrkdwn.code_block("a```b````c", 100)
    assert hidden == 0
    assert code.count("```") == 2  # only our own fences


def test_cutting_counts_escaped_length():
    rendered, hidden = mrkdwn.fit("&" * 100, 50)
    assert len(rendered) <= 50 and rendered == "&amp;" * 10 and hidden == 90


LONG = "<!channel> *x* `" + "界" * 5000


def _questions(count: int, options: int, text_value: str, multi: bool) -> dict:
    return {
        "questions": [
            {
                "question": f"{i} {text_value}",
                "header": text_value,
                "multiSelect": multi,
                "options": [
                    {"label": f"{j} {text_value}", "description": text_value} for j in range(options)
                ],
            }
            for i in range(count)
        ]
    }


@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("text_value", ["short", LONG, HOSTILE.replace("\ud800", "")])
@pytest.mark.parametrize("state", [State.PENDING, State.ANSWERED, State.DENIED])
def test_questions_render_valid_messages_and_forms_at_the_limits(multi, text_value, state):
    asked = _questions(4, 4, text_value, multi)
    answers = {q["question"]: text_value for q in asked["questions"]}
    req = request(
        "AskUserQuestion",
        asked,
        state,
        updated_input={**asked, "answers": answers} if state is State.ANSWERED else None,
    )
    message = request_message(req)
    assert message_blocks_errors(message.blocks) == []
    mrkdwn_texts = [
        o["text"] for b in message.blocks for o in [b.get("text") or {}] if o.get("type") == "mrkdwn"
    ]
    assert not any("<!channel>" in t for t in mrkdwn_texts)
    form = answer_modal(req)
    assert view_errors(form) == []
    choices = [b["element"] for b in form["blocks"] if b.get("block_id", "").startswith("answer.")]
    assert len(choices) == 4
    assert {c["type"] for c in choices} == {"checkboxes" if multi else "static_select"}
    assert all(len(o["value"]) <= limits.OPTION_TEXT for c in choices for o in c["options"])


@pytest.mark.parametrize(
    "tool_name, tool_input",
    [
        ("Bash", {"command": HOSTILE, "description": HOSTILE}),
        ("Write", {"file_path": HOSTILE, "content": "y" * 2_999}),
        ("Write", {"file_path": "/a", "content": "y" * 3_001}),
        ("Edit", {"file_path": "/a", "old_string": LONG, "new_string": LONG}),
        ("mcp__x__y", {"nested": {"deep": [HOSTILE] * 10}}),
        ("mcp__x__y", {"big": "z" * 10_000}),
        ("Bash", {"command": "🚀" * 1_501}),
        ("Bash", {"command": "🚀" * 1_500}),
    ],
)
def test_modify_modal_is_valid_and_never_truncates_silently(tool_name, tool_input):
    view = modify_modal(request(tool_name, tool_input))
    assert view_errors(view) == []
    initial = [b["element"].get("initial_value", "") for b in view["blocks"] if b["type"] == "input"]
    assert all(len(v) <= limits.PLAIN_TEXT_INPUT for v in initial)
    rendered = json.dumps(view)
    for value in tool_input.values():
        if isinstance(value, str) and mrkdwn.size(value) > limits.PLAIN_TEXT_INPUT:
            assert "too large to edit" in rendered


def test_a_question_pydantic_cannot_hold_falls_back_to_an_ordinary_approval():
    # A lone surrogate (valid JSON) cannot be validated, and the answers map
    # must repeat the question text exactly: approve or deny it as it is.
    req = request("AskUserQuestion", _questions(1, 2, HOSTILE, False))
    message = request_message(req)
    assert message_blocks_errors(message.blocks) == []
    assert Action.APPROVE in texts(message) and Action.ANSWER not in texts(message)
    assert "not a question the form can show" in json.dumps(answer_modal(req))


def test_modified_outcome_shows_a_valid_diff_of_any_size():
    before = {"command": LONG, "description": "a", "x": 1, "y": 2, "z": 3}
    after = {"command": HOSTILE, "description": "b", "x": 2, "y": 3, "z": 4}
    message = request_message(request("mcp__t", before, State.APPROVED, updated_input=after))
    assert message_blocks_errors(message.blocks) == []
    assert "Changed by <@U_ALICE>, approved by <@U_ALICE>" in texts(message)


def test_team_rules_listing_is_valid_with_many_hostile_rules():
    from bot.approvals.allowlist import TeamRule
    from bot.approvals.rules import Rule

    entries = [TeamRule(Rule("Bash", f"{HOSTILE} {i} *"), "U<!here>", time.time()) for i in range(80)]
    listing = team_rules(entries)
    assert message_blocks_errors(listing.blocks) == []
    assert len(listing.blocks) <= limits.MESSAGE_BLOCKS
    assert "<!here>" not in json.dumps(listing.blocks)
    assert message_blocks_errors(team_rules([]).blocks) == []


def _granting(message: Message) -> dict | None:
    """The section that lists what "Always allow" grants."""
    return next((b for b in message.blocks if "Always allow* " in json.dumps(b)), None)


def test_always_allow_lists_every_rule_and_directory_it_grants():
    suggestions = [
        {
            "type": "addRules",
            "rules": ["Bash(npm test *)", "Read(/srv/<!here>/&*b*_x_/**)"],
            "behavior": "allow",
        },
        {
            "type": "addDirectories",
            "directories": ["/srv/app", "/home/<@U1> & https://evil.example/#general"],
        },
    ]
    message = request_message(request(suggestions=suggestions))
    assert message_blocks_errors(message.blocks) == []
    assert Action.ALWAYS_ALLOW.value in texts(message)
    section = _granting(message)["text"]
    assert section["verbatim"] is True  # no auto-linked URL or #channel
    assert section["text"].split("\n") == [
        "*Always allow* approves this call and grants this agent, for the rest of its session:",
        "• the rule `Bash(npm test *)`: Bash commands starting with `npm test`",
        "• the rule `Read(/srv/&lt;!here&gt;/&amp;*b*_x_/**)`: Read on `/srv/&lt;!here&gt;/&amp;*b*_x_/**`",
        "• the directory `/srv/app` and everything under it, as part of its workspace (reading files there needs no approval)",
        (
            "• the directory `/home/&lt;@U1&gt; &amp; https://evil.example/#general` and everything under it, as part of its"
            " workspace (reading files there needs no approval)"
        ),
        "The rules also join the team allow-list, for every agent from now on (see `/approvals rules`).",
    ]
    # Once granted, the message keeps saying what was granted.
    done = request_message(request(state=State.APPROVED, suggestions=suggestions, always=True))
    assert "granted this agent" in json.dumps(_granting(done)) and "/srv/app" in json.dumps(_granting(done))


@pytest.mark.parametrize(
    "suggestions",
    [
        # What no version of safe_suggestions keeps now, but an older one stored:
        [{"type": "replaceRules", "rules": ["Bash(npm test *)"], "behavior": "allow"}],
        [{"type": "addRules", "rules": ["Bash(npm test *)"], "behavior": "deny"}],
        [{"type": "addRules", "rules": [f"Bash({HOSTILE} {i} *)" for i in range(20)], "behavior": "allow"}],
        # Directories that cannot be read as they are granted: a line break, a bidi override, a zero-width space.
        [
            {"type": "addRules", "rules": ["Bash(ls)"], "behavior": "allow"},
            {"type": "addDirectories", "directories": ["/srv\n• the rule `x`"]},
        ],
        [
            {"type": "addRules", "rules": ["Bash(ls)"], "behavior": "allow"},
            {"type": "addDirectories", "directories": ["/srv/\u202egpj.exe"]},
        ],
        [
            {"type": "addRules", "rules": ["Bash(ls)"], "behavior": "allow"},
            {"type": "addDirectories", "directories": ["/\u200b"]},
        ],
        # More than fits in a section once escaped: none of it is offered.
        [{"type": "addRules", "rules": [f"Bash({i} {'&' * 280})" for i in range(5)], "behavior": "allow"}],
        # A directory alone would not spare the next call its question.
        [{"type": "addDirectories", "directories": ["/srv/app"]}],
    ],
)
def test_always_allow_is_not_offered_when_not_everything_it_grants_can_be_shown(suggestions):
    message = request_message(request(suggestions=suggestions))
    assert message_blocks_errors(message.blocks) == []
    assert Action.ALWAYS_ALLOW.value not in texts(message)
    assert _granting(message) is None


def _routed(state: State = State.PENDING, **extra) -> ApprovalRequest:
    from bot.approvals.model import Vote

    now = time.time()
    return request(
        "mcp__billing__refund",
        {"amount": HOSTILE * 40},
        state,
        routed=True,
        rule=HOSTILE,
        approvers=("U0ALICE", "S0SRE") * 20,
        mention=("S0ONCALL",),
        required=5,
        votes=tuple(Vote(f"U0V{i}", HOSTILE, now) for i in range(4)),
        cost=1234.5,
        budget=1000.0,
        escalation=[{"after": 60, "approvers": ["S0LEAD"] * 30}],
        escalated=(0,),
        timeout_at=now + 30,
        on_timeout="escalate",
        updated_input={"amount": "1"},
        revision=3,
        **extra,
    )


@pytest.mark.parametrize("state", list(State))
def test_team_rule_details_render_valid_and_escaped(state):
    message = request_message(_routed(state), spent=999.0)
    assert message_blocks_errors(message.blocks) == []
    shown = texts(message)
    assert "<!channel>" not in shown and "<@U1>" not in shown
    if state is State.PENDING:
        assert message.text.startswith("<!subteam^S0ONCALL> ")
        assert "*Approvals:* 4 of 5" in shown and "takes" in shown  # over budget
        assert any(b.get("block_id") == "approval.actions.0123456789abcdef01234567.3" for b in message.blocks)
        assert Action.ALWAYS_ALLOW.value not in shown  # N-of-M: one person cannot allow forever


def test_pending_list_and_home_are_valid_with_many_hostile_requests():
    from bot.approvals.audit import Entry

    pending = [
        request(
            tool_input={"command": HOSTILE * 30},
            agent=HOSTILE,
            posted_channel="C0APPROVALS",
            ts=f"1700000000.{i:06d}",
        )
        for i in range(60)
    ]
    listing = pending_list(pending)
    assert message_blocks_errors(listing.blocks) == []
    assert "…and 40 more." in texts(listing) and "<!channel>" not in texts(listing)
    recent = [
        Entry(f"1700000000000-{i}", {"event": "denied", "request": HOSTILE, "at": "1700000000"}, [])
        for i in range(40)
    ]
    home = home_view(pending, recent)
    assert view_errors(home) == []
    assert pending_list([]).text == "Nothing is waiting for your decision."
