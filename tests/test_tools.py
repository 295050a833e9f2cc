"""What the bot knows about each tool (bot.approvals.tools), and that its users ask it."""

from bot.agent.paths import resolve_paths
from bot.approvals import edits, questions, tools
from bot.approvals.rules import Rule
from bot.slack.blocks.preview import input_blocks


def test_an_unknown_tool_is_known_by_its_name_alone():
    unknown = tools.tool("mcp__billing__refund")
    assert unknown == tools.Tool("mcp__billing__refund")
    assert not (unknown.shown_as_text or unknown.shown_as_code or unknown.editable)


def test_each_known_tool_shows_and_edits_its_own_fields():
    assert [f.key for f in tools.tool(tools.BASH).shown_as_code] == [tools.COMMAND]
    assert [f.key for f in tools.tool(tools.EDIT).shown_as_code] == ["old_string", "new_string"]
    assert [f.key for f in tools.tool(tools.WRITE).editable] == [tools.FILE_PATH, "content"]
    # MultiEdit's edits are a list: a person edits them as the whole input's JSON.
    assert tools.tool(tools.MULTI_EDIT).editable == ()
    assert edits.fields_for(tools.MULTI_EDIT, {"file_path": "/a", "edits": []})[0].key == edits.WHOLE_INPUT


def test_a_shell_command_is_only_bashs_and_only_text():
    assert tools.shell_command(tools.BASH, {"command": "ls"}) == "ls"
    assert tools.shell_command(tools.BASH, {"command": ["ls"]}) is None
    assert tools.shell_command(tools.WRITE, {"command": "ls"}) is None


def test_a_rule_matches_bashs_command_and_other_tools_path():
    assert tools.rule_subject(tools.BASH) == tools.COMMAND
    assert tools.rule_subject(tools.WRITE) == tools.FILE_PATH
    assert Rule.parse("Bash(npm test *)").matches("Bash", {"command": "npm test --ci"})
    assert Rule.parse("Write(/src/**)").matches("Write", {"file_path": "/src/a/b.py"})
    assert not Rule.parse("Write(/src/**)").matches("Write", {"command": "/src/a/b.py"})


def test_the_summary_is_the_first_field_that_says_what_a_call_does():
    assert tools.summary({"url": "https://x", "file_path": "/a"}) == "/a"
    assert tools.summary({"query": "q"}) == "q"
    assert tools.summary({"command": 3, "prompt": "p"}) is None


def test_the_gate_asks_about_the_tools_that_change_things_and_every_mcp_tool():
    gated = tools.GATED_TOOLS.split("|")
    assert {tools.BASH, tools.WRITE, tools.EDIT, tools.ASK_USER_QUESTION, "mcp__.*"} <= set(gated)
    assert tools.READ not in gated


def test_the_questions_tool_is_parsed_by_its_name():
    asked = {"questions": [{"question": "Which?", "options": [{"label": "A"}]}]}
    assert questions.parse(tools.ASK_USER_QUESTION, asked) is not None
    assert questions.parse(tools.BASH, asked) is None


def test_every_path_field_is_resolved(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    given = {key: str(tmp_path / "link") for key in tools.PATH_FIELDS}
    assert set(resolve_paths(given)) == set(tools.PATH_FIELDS)


def test_the_request_message_shows_the_fields_the_tool_names():
    blocks, cut = input_blocks(tools.EDIT, {"file_path": "/a.py", "old_string": "x", "new_string": "y"})
    shown = [b["text"]["text"] for b in blocks]
    assert shown[0] == "File: /a.py"
    assert shown[1].startswith("*Replace*") and shown[2].startswith("*With*")
    assert len(blocks) == 3 and not cut
