"""Messages and views that always fit Slack: cut after escaping, one text budget per
message, every character of a huge input reachable, untrusted text inert.

Each builder is tried at its extremes and checked with the fake's own validation
(``message_blocks_errors``, ``view_errors``), which is as strict as Slack."""

from __future__ import annotations

import dataclasses
import html
import json
import re
import time

import pytest

from bot import text
from bot.approvals import questions
from bot.approvals.model import ApprovalRequest, State, Vote
from bot.slack import limits, mrkdwn
from bot.slack.block_kit_check import blocks_text_length, message_blocks_errors, view_errors
from bot.slack.blocks.full_input import full_input_modal
from bot.slack.blocks.kit import Message, text_size
from bot.slack.blocks.lists import home_view, pending_list
from bot.slack.blocks.modals import answer_modal
from bot.slack.blocks.request_message import request_message
from bot.slack.ids import Action
from tests.test_blocks import request

FLOODS = {
    "amp": "&",
    "lt": "<",
    "gt": ">",
    "emoji": "🚀",
    "mention": "<!channel> <@U0EVIL> ",
    "mixed": "a&<🚀>`\n*_~",
}
"""Untrusted text that grows when escaped (up to five times) or counts twice (astral)."""

_ENTITY_TAIL = re.compile(r"&(a|am|amp|l|lt|g|gt)?$")


def flood(kind: str, size: int) -> str:
    unit = FLOODS[kind]
    return (unit * (size // len(unit) + 1))[:size]


def assert_fits(message: Message) -> None:
    assert message_blocks_errors(message.blocks) == []
    assert text_size(message.blocks) <= limits.MESSAGE_TEXT_BUDGET
    assert blocks_text_length(message.blocks) <= limits.MESSAGE_TEXT_BUDGET


def mrkdwn_objects(value) -> list[dict]:
    found = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("type") == "mrkdwn":
                found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


# -- 1. one function cuts escaped text ------------------------------------------


@pytest.mark.parametrize("kind", list(FLOODS))
def test_inline_cuts_after_escaping_never_inside_an_entity(kind):
    for size in (0, 1, 2, 5, 74, 75, 76, 299, 300, 301, 599, 600, 601, 2_999, 3_000, 3_001):
        value = flood(kind, size)
        for budget in (1, 2, 3, 4, 5, 6, 7, 74, 75, 76, 300, 3_000):
            shown = mrkdwn.inline(value, budget)
            assert mrkdwn.size(shown) <= budget, (kind, size, budget)
            body = shown.removesuffix(mrkdwn.ELLIPSIS)
            assert not _ENTITY_TAIL.search(body), (kind, size, budget, body[-6:])
            # What is shown is the escaped start of the input, entity by entity.
            assert mrkdwn.escape(html.unescape(body)) == body
            assert mrkdwn.clean(value).startswith(html.unescape(body))
            assert (shown == mrkdwn.escape(value)) == (mrkdwn.size(mrkdwn.escape(value)) <= budget)


def test_cut_keeps_our_own_mentions_and_dates_whole():
    line = (
        ", ".join(f"<@U{i:08d}>" for i in range(400)) + " <!date^1700000000^{date_short_pretty}|2023-11-14>"
    )
    for budget in range(1, 200):
        shown = mrkdwn.cut(line, budget).removesuffix(mrkdwn.ELLIPSIS)
        assert mrkdwn.size(shown) < budget
        assert shown.count("<") == shown.count(">")


@pytest.mark.parametrize("kind", list(FLOODS))
def test_plain_text_counts_emoji_twice_and_escaping(kind):
    for size in (74, 75, 76, 150, 151, 3_000, 3_001):
        value = flood(kind, size)
        for budget in (24, 75, 150, 3_000):
            shown = mrkdwn.plain(value, budget)
            assert mrkdwn.size(mrkdwn.escape(shown)) <= budget


def test_a_question_of_601_ampersands_posts():
    # Cut to 1,500, then escaped, this question was a 3,005-character section: invalid_blocks.
    asked = {
        "questions": [
            {"question": "&" * 601, "header": "&" * 12, "options": [{"label": "&" * 75}, {"label": "b"}]}
        ]
    }
    message = request_message(request("AskUserQuestion", asked))
    assert_fits(message)
    form = answer_modal(request("AskUserQuestion", asked))
    assert view_errors(form) == []


# -- 2. one budget for the whole message ----------------------------------------


def _votes(count: int, name: str) -> tuple[Vote, ...]:
    now = time.time()
    return tuple(Vote(f"U0VOTER{i:03d}", name, now + i) for i in range(count))


def _everything(tool_name: str, tool_input: dict, state: State, filler: str) -> ApprovalRequest:
    """A request with every optional part at its largest."""
    changed = {k: (v + "!" if isinstance(v, str) else [v]) for k, v in tool_input.items()}
    changed.update({f"{filler[:50]}{i}": filler for i in range(60)})  # 60 more changed fields
    suggestions = [
        {"type": "addRules", "rules": [f"{tool_name}(x {i})" for i in range(12)], "behavior": "allow"}
    ]
    return request(
        tool_name,
        tool_input,
        state,
        agent=filler,
        title=filler,
        requested_by="U0REQUESTER",
        reason=filler,
        routed=True,
        rule=filler,
        approvers=tuple(f"U0APPROVER{i:03d}" for i in range(100)) + ("S0SRE",),
        mention=tuple(f"U0PAGE{i:04d}" for i in range(300)),
        required=1 if state is State.PENDING else 30,
        votes=_votes(0 if state is State.PENDING else 29, filler),
        cost=1e12,
        budget=1.0,
        escalation=[{"after": 60, "approvers": [f"S0LEAD{i:03d}" for i in range(200)]}],
        escalated=(0,),
        timeout_at=time.time() + 30,
        on_timeout="escalate",
        updated_input=changed,
        revision=3,
        suggestions=suggestions,
        always=state is State.APPROVED,
    )


TOOLS = {
    "Bash": lambda v: {"command": v, "description": v, "timeout": 600},
    "Write": lambda v: {"file_path": v, "content": v},
    "Edit": lambda v: {"file_path": v, "old_string": v, "new_string": v, "replace_all": False},
    "MultiEdit": lambda v: {"file_path": v, "edits": [{"old_string": v, "new_string": v}] * 3},
    "mcp__x__" + "y" * 200: lambda v: {"a": v, "b": [v, v], "c": {"d": v}},
}


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("tool_name", list(TOOLS))
@pytest.mark.parametrize("kind", ["amp", "lt", "emoji", "mention", "mixed"])
def test_every_tool_in_every_state_fits_the_budget_at_its_largest(tool_name, state, kind):
    filler = flood(kind, 40_000)
    req = _everything(tool_name, TOOLS[tool_name](filler), state, filler)
    message = request_message(req, spent=1e12)
    assert_fits(message)
    shown = json.dumps(message.blocks, ensure_ascii=False)
    parsed = " ".join(o["text"] for o in mrkdwn_objects(message.blocks))  # plain_text is never parsed
    assert "<!channel>" not in parsed and "<@U0EVIL>" not in parsed
    # Cut content stays reachable.
    assert Action.VIEW_INPUT.value in shown
    # Pending: the buttons are still there; decided: the outcome line is.
    if state is State.PENDING:
        assert Action.APPROVE.value in shown and Action.DENY.value in shown
        # N-of-M, with 29 of 30 votes in: no Always allow, the votes listed instead.
        voted = dataclasses.replace(req, required=30, votes=_votes(29, filler))
        assert_fits(request_message(voted, spent=1e12))
    else:
        assert text.message.outcome_line(req)[:20] in shown


@pytest.mark.parametrize("kind", ["amp", "emoji", "mention", "mixed"])
@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("state", [State.PENDING, State.ANSWERED, State.DENIED, State.EXPIRED])
def test_four_questions_with_four_long_options_post_and_stay_answerable(kind, multi, state):
    long = flood(kind, 5_000)
    asked = {
        "questions": [
            {
                "question": f"{i} {long}",
                "header": long[:12],
                "multiSelect": multi,
                "options": [{"label": f"{j} {long}", "description": long} for j in range(4)],
            }
            for i in range(4)
        ]
    }
    answers = {q["question"]: flood(kind, 3_000) for q in asked["questions"]}
    req = _everything("AskUserQuestion", asked, state, long)
    req = request(
        "AskUserQuestion",
        asked,
        state,
        agent=long,
        mention=req.mention,
        approvers=req.approvers,
        updated_input={**asked, "answers": answers} if state is State.ANSWERED else None,
        reason=long,
    )
    assert questions.parse("AskUserQuestion", asked) is not None
    message = request_message(req)
    assert_fits(message)
    shown = json.dumps(message.blocks, ensure_ascii=False)
    assert Action.VIEW_INPUT.value in shown
    if state is State.PENDING:
        assert Action.ANSWER.value in shown
    # Every question and option still shows in the message, and the form holds them all.
    assert all(f"• *{j} " in shown for j in range(4))
    form = answer_modal(req)
    assert view_errors(form) == []
    choices = [b for b in form["blocks"] if b["block_id"].startswith("answer.")]
    assert len(choices) == 4 and all(len(c["element"]["options"]) == 5 for c in choices)


def test_fifty_changed_fields_and_many_rules_fit():
    before = {f"key {i} " + "&" * 100: "&" * 3_000 for i in range(55)}
    after = {k: "🚀" * 3_000 for k in before}
    for state in (State.PENDING, State.APPROVED):
        message = request_message(request("mcp__t", before, state, updated_input=after))
        assert_fits(message)
        assert "Also changed:" in json.dumps(message.blocks)


def test_a_message_that_would_fit_uncut_is_not_cut():
    message = request_message(request("Bash", {"command": "make deploy", "description": "Deploy"}))
    shown = json.dumps(message.blocks)
    assert "make deploy" in shown and Action.VIEW_INPUT.value not in shown and "…" not in shown


# -- View full input: every character, page by page --------------------------------


_FENCED = re.compile(r"^```\n(.*)\n```$", re.DOTALL)


def _read_all_pages(req: ApprovalRequest) -> tuple[str, int]:
    """Turn every page as a person would (Next), checking each; the code shown, joined."""
    shown, page, pages = [], 0, 0
    while True:
        view = full_input_modal(req, page)
        assert view_errors(view) == []
        assert len(json.dumps(view)) <= limits.VIEW_BUDGET
        pages += 1
        for block in view["blocks"]:
            body = (
                _FENCED.match(block.get("text", {}).get("text", "")) if block["type"] == "section" else None
            )
            if body:
                shown.append(html.unescape(body.group(1).replace("`\u200b", "`")))
        turns = [e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]
        following = [t for t in turns if t["value"].endswith(f" {page + 1}")]
        if not following:
            return "".join(shown), pages
        assert following[0]["action_id"] == Action.INPUT_NEXT.value
        page += 1


@pytest.mark.slow
@pytest.mark.parametrize("size, kind", [(200_000, "mixed"), (200_000, "emoji"), (2_000_000, "mixed")])
def test_view_full_input_shows_every_character_across_pages(size, kind):
    tool_input = {"command": flood(kind, size), "description": "big"}
    whole, pages = _read_all_pages(request("Bash", tool_input))
    assert whole == json.dumps(tool_input, indent=2, ensure_ascii=False)
    assert pages > 1


def test_view_full_input_after_a_change_shows_what_runs_then_what_was_asked():
    before, after = {"command": "&" * 300_000}, {"command": "echo safe"}
    whole, _ = _read_all_pages(request("Bash", before, State.APPROVED, updated_input=after))
    assert whole == json.dumps(after, indent=2, ensure_ascii=False) + json.dumps(
        before, indent=2, ensure_ascii=False
    )


def test_a_page_out_of_range_shows_the_last_page():
    req = request("Bash", {"command": "x" * 400_000})
    last = full_input_modal(req, 10_000)
    assert (
        view_errors(last) == []
        and "Previous page" in json.dumps(last)
        and "Next page" not in json.dumps(last)
    )


# -- 3. untrusted text stays inert ---------------------------------------------------


@pytest.mark.parametrize("state", list(State))
def test_every_mrkdwn_object_is_verbatim(state):
    for tool_name, tool_input in TOOLS.items():
        req = _everything(tool_name, tool_input("https://evil.example #general <!here>"), state, "#general")
        message = request_message(req)
        objects = mrkdwn_objects(message.blocks)
        assert objects and all(o.get("verbatim") is True for o in objects)
    asked = {
        "questions": [
            {"question": "#general?", "options": [{"label": "a", "description": "https://x"}, {"label": "b"}]}
        ]
    }
    objects = mrkdwn_objects(request_message(request("AskUserQuestion", asked, state)).blocks)
    assert all(o.get("verbatim") is True for o in objects)


def test_the_thread_reminder_and_rule_removal_escape_names():
    req = request("<!channel> &", {"command": "ls"})
    assert "<!channel>" not in text.message.reminder(req, ["U0BOB"], 90)
    assert "&lt;!channel&gt; &amp;" in text.message.reminder(req, ["U0BOB"], 90)
    assert "<!here>" not in text.lists.rule_removed("Bash(<!here> *)")


# -- 18. after a Modify --------------------------------------------------------------


def test_the_approved_card_leads_with_what_ran():
    before, after = {"command": "rm -rf /srv"}, {"command": "rm -rf /srv/tmp"}
    message = request_message(request("Bash", before, State.APPROVED, updated_input=after))
    sections = [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    assert sections[0] == "*Command*\n```\nrm -rf /srv/tmp\n```"
    changes = [s for s in sections if s.startswith("*Changed before approval*")]
    assert (
        len(changes) == 1
        and "before:\n```rm -rf /srv```" in changes[0]
        and "after:\n```rm -rf /srv/tmp```" in changes[0]
    )
    assert "\n\n" not in changes[0]


def test_the_outcome_says_who_changed_and_who_approved():
    now = time.time()
    # N-of-M: alice's edit cleared the votes and counted as hers, then bob approved. The vote times
    # come from different workers' clocks, so they do not say who edited: the request records it.
    votes = (Vote("U_BOB", "bob", now - 5), Vote("U_ALICE", "alice", now))
    req = request(
        "Bash",
        {"command": "a"},
        State.APPROVED,
        updated_input={"command": "b"},
        required=2,
        votes=votes,
        decided_by="U_BOB",
        edited_by="U_ALICE",
    )
    assert text.message.outcome_line(req).startswith(
        ":pencil2: Changed by <@U_ALICE>, approved by <@U_BOB> and <@U_ALICE> "
    )
    alone = request("Bash", {"command": "a"}, State.APPROVED, updated_input={"command": "b"})
    assert text.message.outcome_line(alone).startswith(
        ":pencil2: Changed by <@U_ALICE>, approved by <@U_ALICE> "
    )


@pytest.mark.parametrize("kind", ["amp", "emoji", "mention", "mixed"])
@pytest.mark.parametrize("multi", [False, True])
def test_proposed_answers_awaiting_agreement_fit_the_budget(kind, multi):
    """N-of-M on a question: four long proposed answers, who proposed them, 29 of 30 agreeing."""
    long = flood(kind, 5_000)
    asked = {
        "questions": [
            {
                "question": f"{i} {long}",
                "header": long[:12],
                "multiSelect": multi,
                "options": [{"label": f"{j} {long}", "description": long} for j in range(4)],
            }
            for i in range(4)
        ]
    }
    answers = {q["question"]: flood(kind, 3_000) for q in asked["questions"]}
    base = _everything("AskUserQuestion", asked, State.PENDING, long)
    req = request(
        "AskUserQuestion",
        asked,
        State.PENDING,
        agent=long,
        mention=base.mention,
        approvers=base.approvers,
        required=30,
        votes=_votes(29, long),
        edited_by="U0VOTER000",
        revision=5,
        updated_input={**asked, "answers": answers},
    )
    message = request_message(req)
    assert_fits(message)
    parsed = " ".join(o["text"] for o in mrkdwn_objects(message.blocks))
    assert "<!channel>" not in parsed and "<@U0EVIL>" not in parsed
    assert parsed.count("*Proposed answer:*") == 4 and "Proposed by <@U0VOTER000>." in parsed
    assert "*Agreed:* 29 of 30" in parsed


# -- a changed field's name sits between our fences ----------------------------------

_BACKTICK_KEYS = [
    "``` *Approved by security*",
    "`",
    "``",
    "````````",
    "a```",
    "```a",
    "`" * 200,
    "&`&`",
    "x" * 99 + "``",
    "```\n*hi*\n```",
]
_BACKTICK_VALUES = ["rm -rf /srv/old", "`", "``", "x`", "`x", "```", "`" * 2_000, "a" * 2_000 + "`"]


@pytest.mark.parametrize("key", _BACKTICK_KEYS)
def test_a_changed_keys_backticks_cannot_close_the_before_after_fences(key):
    """The key (chosen by the agent) and the values sit on the lines of the before/after fences:
    ``` in the key, or a backtick at a value's end, would close or lengthen a fence, and the values
    would render as mrkdwn outside the code blocks."""
    for value in _BACKTICK_VALUES:
        before, after = {key: value, "x": 1}, {key: value + "!", "x": 1}
        for state in (State.PENDING, State.APPROVED):
            message = request_message(request("mcp__files__clean", before, state, updated_input=after))
            assert_fits(message)
            [diff] = [
                b["text"]["text"]
                for b in message.blocks
                if b["type"] == "section" and "before:" in b["text"].get("text", "")
            ]
            runs = re.findall(r"`+", diff)
            # Exactly our four fences, and no other run of two or more backticks anywhere.
            assert [len(r) for r in runs if len(r) > 1] == [3, 3, 3, 3], (key, value, diff[:300])


# -- the policy's people stay on the card ------------------------------------------

_LONG_QUESTIONS = {
    "questions": [
        {
            "question": f"{i} " + "q" * 3000,
            "header": "Pick",
            "multiSelect": False,
            "options": [{"label": f"{j} " + "x" * 300, "description": "d" * 400} for j in range(10)],
        }
        for i in range(4)
    ]
}


@pytest.mark.parametrize("kind", ["plain", "amp", "emoji"])
def test_a_long_question_cannot_push_the_paged_people_off_the_card(kind):
    """Mentions come from the policy: the paging line and "Who can decide" are the bot's own text.
    An agent whose question is long enough (4 questions of 10 long options) drives the message to
    its smallest room; every paged person, the on-call group listed last, stays on the card."""
    asked = (
        _LONG_QUESTIONS
        if kind == "plain"
        else json.loads(json.dumps(_LONG_QUESTIONS).replace("x", FLOODS[kind]))
    )
    paged = tuple(f"U0ONCALL{i:02d}" for i in range(12)) + ("S0SRETEAM",)
    escalation = [{"after": 60, "approvers": ["U0LEAD", "S0DIRECTORS"]}]
    for state in (State.PENDING, State.ANSWERED):
        req = request(
            "AskUserQuestion",
            asked,
            state,
            mention=paged,
            approvers=paged,
            agent="a" * 5_000,
            title=flood("mixed", 5_000),
            escalation=escalation,
            escalated=(0,),
            required=2,
        )
        message = request_message(req)
        assert_fits(message)
        if state is State.ANSWERED:
            continue  # nobody is paged once it is decided
        paging, who = message.blocks[1]["text"]["text"], json.dumps(message.blocks)
        assert [t for t in paged if t not in paging] == [], "not paged on the card"
        assert "*Who can decide:* " + text.notation.targets(paged) in who
        assert ":arrow_double_up: Escalated to <@U0LEAD>, <!subteam^S0DIRECTORS>" in who
        # The notification keeps every mention, as before.
        assert all(text.notation.target(t) in message.text for t in paged)


def test_a_policy_with_absurdly_many_targets_is_cut_saying_how_many_more():
    paged = tuple(f"U0PAGE{i:04d}" for i in range(300))
    message = request_message(request("AskUserQuestion", _LONG_QUESTIONS, mention=paged, approvers=paged))
    assert_fits(message)
    for line in (
        message.blocks[1]["text"]["text"],
        *(
            e["text"]
            for b in message.blocks
            if b["type"] == "context"
            for e in b["elements"]
            if "Who can decide" in e["text"]
        ),
    ):
        named = re.findall(r"<@(U0PAGE\d{4})>", line)
        assert named == list(paged[: len(named)]) and 10 < len(named) < len(paged)
        assert f" and {len(paged) - len(named)} more" in line


# -- /approvals and App Home share the budget across their lines ---------------------

_DATE = re.compile(r"<!date\^\d+\^\{date_short_pretty\} at \{time\}\|[^<>]+>")


@pytest.mark.parametrize("kind", ["amp", "emoji", "mention", "mixed"])
@pytest.mark.parametrize("where", ["linked", "channel", "not posted"])
@pytest.mark.parametrize("count", [1, 20, 25])
def test_the_approvals_list_fits_slacks_text_budget_with_long_tool_names(kind, where, count):
    """20 lines of long tool names, summaries and agents (the link into the workspace and the date
    besides) would exceed ``limits.MESSAGE_TEXT_BUDGET``: the lines share it, each keeping its link
    and date whole, and the list says how many it does not show."""
    filler = flood(kind, 5_000)
    posted = {
        "linked": {"posted_channel": "C0APPROVALS"},
        "channel": {"posted_channel": "C0APPROVALS"},
        "not posted": {},
    }
    waiting = [
        request(
            tool_name="mcp__" + filler,
            tool_input={"command": filler},
            agent=filler,
            ts=f"1700000000.{i:06d}",
            **posted[where],
        )
        for i in range(count)
    ]
    workspace = "https://fake-team.slack.com/" if where == "linked" else None
    listing = pending_list(waiting, workspace)
    assert_fits(listing)
    parsed = " ".join(o["text"] for o in mrkdwn_objects(listing.blocks))
    assert "<!channel>" not in parsed and "<@U0EVIL>" not in parsed
    lines = [b["text"]["text"] for b in listing.blocks if b["type"] == "section"]
    assert len(lines) == min(count, 20)
    for i, line in enumerate(lines):
        assert line.startswith("*mcp__") and _DATE.search(line), line[-200:]
        if where == "linked":
            assert (
                f"<https://fake-team.slack.com/archives/C0APPROVALS/p1700000000{i:06d}|Open the request>"
                in line
            )
        elif where == "channel":
            assert "in <#C0APPROVALS>" in line
    assert ("…and 5 more." in json.dumps(listing.blocks, ensure_ascii=False)) == (count == 25)
    home = home_view(waiting, [], workspace)
    assert view_errors(home) == [] and text_size(home["blocks"]) <= limits.MESSAGE_TEXT_BUDGET


def test_a_short_approvals_list_is_not_cut():
    waiting = [
        request(
            tool_input={"command": "make deploy"}, agent="release-bot", posted_channel="C0A", ts="1.000001"
        )
    ]
    line = pending_list(waiting, "https://fake-team.slack.com/").blocks[1]["text"]["text"]
    assert line.startswith(
        "*Bash* make deploy\n*Agent:* release-bot · <https://fake-team.slack.com/archives/C0A/p1000001|"
    )
    assert "…" not in line


def test_many_votes_are_named_then_counted():
    voters = _votes(150, "x")
    message = request_message(request("Bash", {"command": "make deploy"}, required=200, votes=voters))
    assert_fits(message)
    [line] = [
        e["text"]
        for b in message.blocks
        if b["type"] == "context"
        for e in b["elements"]
        if "*Approvals:*" in e["text"]
    ]
    named = re.findall(r"<@(U0VOTER\d{3})>", line)
    assert line.startswith("*Approvals:* 150 of 200: ") and named == [v.user for v in voters[: len(named)]]
    assert line.endswith(f" and {150 - len(named)} more") and "…" not in line
