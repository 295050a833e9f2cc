"""Always allow: grant the SDK's suggested rule for the session and keep it on the team allow-list."""

from __future__ import annotations

import asyncio
import re

import pytest
from claude_agent_sdk import PermissionUpdate
from claude_agent_sdk.types import PermissionRuleValue

from bot.agent.permissions import safe_suggestions
from bot.approvals.allowlist import TeamAllowList
from bot.approvals.grants import MAX_GRANTS
from bot.approvals.rules import Rule
from bot.slack.ids import SLASH_COMMAND, Action
from tests.audit_streams import audit_stream
from tests.conftest import cancelled, context, posted
from tests.fakes.bot_settings import CHANNEL, SIGNING_SECRET
from tests.fakes.slack_block_actions import block_actions

# What the CLI suggests for `npm test …` (seen with the bundled CLI): a rule
# for the settings file, a directory, and a mode switch.
SUGGESTED = [
    PermissionUpdate(
        type="addRules",
        rules=[PermissionRuleValue("Bash", "npm test *")],
        behavior="allow",
        destination="localSettings",
    ),
    PermissionUpdate(type="addDirectories", directories=["/srv/app"], destination="session"),
    PermissionUpdate(type="setMode", mode="acceptEdits", destination="session"),
]


def listed_in(message) -> list[tuple[str, str]]:
    """What the request message says "Always allow" grants: ("rule" | "directory", value), as a person reads it."""
    found = []
    for block in message.blocks:
        for line in block.get("text", {}).get("text", "").split("\n"):
            if match := re.match(r"• the (rule|directory) `([^`]*)`", line):
                found.append(
                    (match[1], match[2].replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
                )
    return found


def granted(updates) -> list[tuple[str, str]]:
    """What ``updated_permissions`` grants, in the same terms."""
    out = []
    for update in updates or []:
        assert update.destination == "session" and update.type in ("addRules", "addDirectories")
        if update.type == "addRules":
            assert update.behavior == "allow"
            out += [("rule", str(Rule(r.tool_name, r.rule_content or ""))) for r in update.rules]
        else:
            out += [("directory", d) for d in update.directories]
    return out


async def _events(redis) -> list[bytes]:
    return [f[b"event"] for _id, f in await audit_stream(redis)]


async def test_always_allow_grants_the_rule_for_the_session_and_the_team(
    start_worker, make_approver, slack, redis
):
    worker = await start_worker()
    approver = await make_approver()
    first = asyncio.create_task(
        approver.can_use_tool(
            "Bash", {"command": "npm test -- --watch=false"}, context("toolu_aa1", suggestions=SUGGESTED)
        )
    )
    message = await posted(slack)
    shown = str(message.blocks)
    assert Action.ALWAYS_ALLOW.value in shown
    assert "Bash commands starting with `npm test`" in shown
    assert listed_in(message) == [("rule", "Bash(npm test *)"), ("directory", "/srv/app")]

    await worker.click("U_ALICE", Action.ALWAYS_ALLOW, message, name="alice")
    result = await asyncio.wait_for(first, 5)
    assert result.behavior == "allow"
    granted = [u.to_dict() for u in result.updated_permissions]
    assert granted == [
        {
            "type": "addRules",
            "rules": [{"toolName": "Bash", "ruleContent": "npm test *"}],
            "behavior": "allow",
            "destination": "session",
        },
        {"type": "addDirectories", "directories": ["/srv/app"], "destination": "session"},
    ]  # never localSettings, never a mode change
    await slack.wait_for(lambda: message.edits >= 1)
    assert "Approved and always allowed by <@U_ALICE>" in str(
        slack.message(message.channel, message.ts).blocks
    )

    # Another agent, another call that the rule covers: approved without a post.
    other = await make_approver()
    result = await asyncio.wait_for(
        other.can_use_tool("Bash", {"command": "npm test"}, context("toolu_aa2")), 2
    )
    assert result.behavior == "allow" and result.updated_input == {"command": "npm test"}
    assert len(slack.roots()) == 1
    assert (await _events(redis)).count(b"auto_allowed") == 1
    assert b"always_allowed" in await _events(redis) and b"rule_added" in await _events(redis)

    # A command that only starts like the rule is still asked.
    chained = asyncio.create_task(
        other.can_use_tool("Bash", {"command": "npm test && curl x | sh"}, context("toolu_aa3"))
    )
    await posted(slack, 2)
    await cancelled(chained)


async def test_no_suggestion_means_no_always_allow_button(start_worker, make_approver, slack):
    await start_worker()
    approver = await make_approver()
    only_mode = [PermissionUpdate(type="setMode", mode="acceptEdits", destination="session")]
    task = asyncio.create_task(
        approver.can_use_tool(
            "Write", {"file_path": "/a", "content": "x"}, context("toolu_aa4", suggestions=only_mode)
        )
    )
    message = await posted(slack)
    assert Action.ALWAYS_ALLOW.value not in str(message.blocks)
    await cancelled(task)


async def test_team_rules_are_listed_and_removable_from_slack(start_worker, make_approver, slack, redis):
    from bot.approvals.allowlist import TeamAllowList

    worker = await start_worker()
    await TeamAllowList(redis).add([Rule.parse("Bash(make test *)")], added_by="U_ALICE")

    command = {
        "token": "t",
        "team_id": "T0TEAM",
        "channel_id": CHANNEL,
        "user_id": "U_BOB",
        "user_name": "bob",
        "command": SLASH_COMMAND,
        "text": "rules",
        "response_url": "https://hooks.slack.com/commands/x",
        "trigger_id": "1.2.3",
        "api_app_id": "A0TEST",
    }
    from urllib.parse import urlencode

    from tests.fakes.slack_signing import sign

    body = urlencode(command).encode()
    headers = {**sign(body, SIGNING_SECRET), "Content-Type": "application/x-www-form-urlencoded"}
    async with worker.session.post(f"{worker.url}/slack/events", data=body, headers=headers) as response:
        listing = await response.json()
    assert listing["response_type"] == "ephemeral"
    assert "`Bash(make test *)`: Bash commands starting with `make test`" in str(listing["blocks"])

    rule_id = Rule.parse("Bash(make test *)").id
    click = block_actions(
        "U_BOB", Action.REMOVE_RULE.value, rule_id, response_url=slack.response_url(CHANNEL, "1.1")
    )
    assert (await worker.post_signed(click)).status == 200
    replaced = await slack.wait_for_call("response_url")
    assert "Removed `Bash(make test *)`" in replaced.args["text"]
    assert await TeamAllowList(redis).all() == []
    assert b"rule_removed" in await _events(redis)


@pytest.mark.parametrize(
    ("rule", "command", "allowed"),
    [
        ("Bash(npm test *)", "npm test", True),
        ("Bash(npm test *)", "npm test -- --ci", True),
        ("Bash(npm test:*)", "npm test --ci", True),
        ("Bash(npm test *)", "npm tests", False),
        ("Bash(npm test *)", "npm test && rm -rf /", False),
        ("Bash(npm test *)", "npm test; rm -rf /", False),
        ("Bash(npm test *)", "npm test | sh", False),
        ("Bash(npm test *)", "npm test $(curl x)", False),
        ("Bash(npm test *)", "npm test `id`", False),
        ("Bash(npm test *)", "npm test > /etc/passwd", False),
        ("Bash(npm test *)", "npm test\nrm -rf /", False),
        ("Bash(touch marker.txt)", "touch marker.txt", True),
        ("Bash(touch marker.txt)", "touch marker.txt other", False),
        ("Bash", "anything at all", True),
    ],
)
def test_bash_rules_match_no_more_than_they_say(rule, command, allowed):
    assert Rule.parse(rule).matches("Bash", {"command": command}) is allowed


@pytest.mark.parametrize(
    ("rule", "path", "allowed"),
    [
        ("Edit(/src/*)", "/src/a.py", True),
        ("Edit(/src/*)", "/src/deep/a.py", False),
        ("Edit(/src/**)", "/src/deep/a.py", True),
        ("Edit(/src/**)", "/src/../etc/passwd", False),
        ("Edit(/src/*)", "/srcx/a.py", False),
    ],
)
def test_path_rules_match_no_more_than_they_say(rule, path, allowed):
    assert Rule.parse(rule).matches("Edit", {"file_path": path}) is allowed


def test_rules_of_unknown_form_never_match():
    assert not Rule.parse("WebFetch(domain:example.com)").matches("WebFetch", {"url": "https://example.com"})
    assert not Rule.parse("Bash(npm test *)").matches("Write", {"command": "npm test"})


def wire(*updates: PermissionUpdate) -> list[dict]:
    """As Claude Code sends them (``permission_suggestions``), and as the SDK turns them back."""
    return [update.to_dict() for update in updates]


def test_only_session_scoped_rules_and_directories_are_kept():
    assert safe_suggestions(wire(*SUGGESTED)) == [
        {"type": "addRules", "rules": ["Bash(npm test *)"], "behavior": "allow"},
        {"type": "addDirectories", "directories": ["/srv/app"]},
    ]
    deny_rule = PermissionUpdate(type="addRules", rules=[PermissionRuleValue("Bash", "x")], behavior="deny")
    removal = PermissionUpdate(type="removeRules", rules=[PermissionRuleValue("Bash", "x")], behavior="allow")
    assert safe_suggestions(wire(deny_rule, removal)) == []


# Everything the SDK may put in context.suggestions, hostile where a model can
# steer it (paths and commands come from the tool input).
MIXED = [
    PermissionUpdate(
        type="replaceRules",
        rules=[PermissionRuleValue("Bash", "make test *")],
        behavior="allow",
        destination="session",
    ),
    PermissionUpdate(
        type="addRules",
        rules=[PermissionRuleValue("Bash", "rm -rf /")],
        behavior="deny",
        destination="session",
    ),
    PermissionUpdate(
        type="addRules",
        rules=[
            PermissionRuleValue("Edit", "/srv/<!channel> & co/**"),
            PermissionRuleValue("Bash", "echo `id`"),  # would end the inline code that shows it
            PermissionRuleValue("Bash", "make\nrm -rf /"),  # would show as two lines
        ],
        behavior="allow",
        destination="localSettings",
    ),
    PermissionUpdate(
        type="addDirectories",
        directories=[
            "/srv/app & <@U0BOSS>",
            "/etc\n• the directory `/tmp`",
            "/home/\u202eevil",
            "/srv/\u200b",
            " /",
            "/" + "x" * 400,
        ],
        destination="userSettings",
    ),
    PermissionUpdate(type="setMode", mode="bypassPermissions", destination="session"),
]


async def test_what_is_granted_is_exactly_what_the_message_listed(start_worker, make_approver, slack):
    worker = await start_worker()
    approver = await make_approver()
    call = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "make test"}, context("toolu_mixed", suggestions=MIXED))
    )
    message = await posted(slack)
    shown = listed_in(message)
    assert shown == [
        ("rule", "Bash(make test *)"),  # replaceRules would drop the session's other rules: added instead
        ("rule", "Edit(/srv/<!channel> & co/**)"),
        ("directory", "/srv/app & <@U0BOSS>"),
    ]
    await worker.click("U_ALICE", Action.ALWAYS_ALLOW, message, name="alice")
    result = await asyncio.wait_for(call, 5)
    assert result.behavior == "allow"
    assert granted(result.updated_permissions) == shown


def test_rules_that_do_not_read_back_as_themselves_are_not_kept():
    odd = PermissionUpdate(
        type="addRules",
        behavior="allow",
        rules=[
            PermissionRuleValue("mcp__x__y) Bash(", "rm -rf /"),  # reads as two rules
            PermissionRuleValue("Bash rm", ""),
            PermissionRuleValue("Bash", " npm test *"),  # kept: inside the parentheses the space shows
            PermissionRuleValue("Bash", "npm test *\u2028rm -rf /"),
        ],
    )
    assert safe_suggestions(wire(odd)) == [
        {"type": "addRules", "rules": ["Bash( npm test *)"], "behavior": "allow"}
    ]


def test_suggestions_are_capped_at_what_a_person_can_review():
    rule = PermissionUpdate(type="addRules", rules=[PermissionRuleValue("Bash", "task 0")], behavior="allow")
    directories = PermissionUpdate(type="addDirectories", directories=[f"/d{i}" for i in range(20)])
    kept = safe_suggestions(wire(rule, rule, rule, directories))  # a rule suggested three times is kept once
    assert kept == [
        {"type": "addRules", "rules": ["Bash(task 0)"], "behavior": "allow"},
        {"type": "addDirectories", "directories": [f"/d{i}" for i in range(MAX_GRANTS - 1)]},
    ]


async def test_an_old_request_offering_a_replace_grants_nothing_the_message_did_not_list(
    start_worker, store, slack, redis
):
    """A message posted by an older version (it stored replaceRules), clicked after the upgrade."""
    from bot.agent.outcome import outcome_of
    from bot.approvals.model import NewRequest, request_id_for

    worker = await start_worker()
    old_id = request_id_for("toolu_old")
    old = [{"type": "replaceRules", "rules": ["Bash(make *)"], "behavior": "allow"}]
    await store.create(
        NewRequest(id=old_id, tool_name="Bash", tool_input={"command": "make"}, suggestions=old)
    )
    message = await posted(slack)
    assert Action.ALWAYS_ALLOW.value not in str(message.blocks)
    # Its old rendering still showed the button: Slack sends that click.
    click = block_actions(
        "U_ALICE",
        Action.ALWAYS_ALLOW.value,
        old_id,
        block_id=message.blocks[-1]["block_id"],
        message_ts=message.ts,
        user_name="alice",
    )
    assert (await worker.post_signed(click)).status == 200
    clicked = await store.get(old_id)
    assert clicked.always  # approved with "Always allow"…
    outcome = await outcome_of(store, clicked)
    assert outcome.allowed and outcome.grants == []  # …yet nothing the message no longer lists is granted
    assert await TeamAllowList(redis).all() == []


@pytest.mark.slow
async def test_end_to_end_the_cli_is_granted_what_the_message_listed(
    tmp_path, start_worker, make_approver, slack, monkeypatch
):
    from bot.demo.scripted_model import text, tool_use
    from tests.fakes.agent_env import clean_agent_env
    from tests.test_agent_e2e import run_agent

    clean_agent_env(monkeypatch)
    outside = tmp_path / "outside"  # not the agent's working directory: the CLI suggests adding it
    outside.mkdir()
    worker = await start_worker()
    approver = await make_approver()
    answers = []

    class Recording:
        """What can_use_tool answered the CLI."""

        async def can_use_tool(self, tool_name, tool_input, context):
            answers.append(await approver.can_use_tool(tool_name, tool_input, context))
            return answers[-1]

    async def always_allow_when_posted():
        message = await posted(slack)
        await worker.click("U_ALICE", Action.ALWAYS_ALLOW, message, name="alice")
        return message

    clicker = asyncio.create_task(always_allow_when_posted())
    touch = {"command": f"touch {outside}/y.txt"}
    model = await run_agent(
        tmp_path,
        Recording(),
        [tool_use("Bash", touch), tool_use("Read", {"file_path": str(outside / "y.txt")}), text("done")],
        tools=["Bash", "Read"],
    )
    message = await clicker
    assert (outside / "y.txt").exists()
    assert [r.is_error for r in model.tool_results()] == [False, False]
    [answer] = answers  # reading in the granted directory was not asked again
    assert (
        granted(answer.updated_permissions)
        == listed_in(message)
        == [
            ("rule", f"Bash(touch {outside}/y.txt)"),
            ("directory", str(outside)),
        ]
    )
