"""*Deny and stop*: the call is denied and the agent's whole run ends, whichever host asked."""

from __future__ import annotations

import asyncio
import json

import pytest
from claude_agent_sdk import ClaudeAgentOptions, ResultError, ResultMessage, query

from bot.approvals.audit import AuditLog
from bot.approvals.model import State, request_id_for
from bot.demo.scripted_model import ScriptedModel, tool_use
from bot.demo.scripted_model import text as say
from bot.slack.ids import Action
from tests.conftest import posted
from tests.fakes.agent_env import clean_agent_env

pytestmark = pytest.mark.slow  # every test runs the real Claude Code CLI

MARKER = {"command": "echo ran > marker.txt", "description": "Write a marker file"}


@pytest.fixture(autouse=True)
def _agent_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_agent_env(monkeypatch)


async def test_deny_and_stop_ends_the_sdk_run_and_slack_says_so(
    tmp_path, start_worker, make_approver, slack, redis, store
):
    worker = await start_worker()
    approver = await make_approver(agent_name="e2e")
    workdir = tmp_path / "work"
    workdir.mkdir()

    async def stop_when_posted() -> None:
        message = await posted(slack)
        assert Action.DENY_STOP.value in json.dumps(message.blocks)
        await worker.deny("U_BOB", message, "Wrong cluster.", name="bob", stop=True)

    clicker = asyncio.create_task(stop_when_posted())
    async with ScriptedModel.start(
        [tool_use("Bash", MARKER, id="toolu_stop_sdk"), say("carrying on regardless")]
    ) as model:
        options = ClaudeAgentOptions(
            cwd=workdir,
            setting_sources=[],
            tools=["Bash"],
            env=model.cli_env(config_dir=tmp_path / "cfg"),
            can_use_tool=approver.can_use_tool,
            permission_mode="default",
        )
        results: list[ResultMessage] = []
        # The CLI ends an interrupted run with an error result, which the SDK then raises.
        with pytest.raises(ResultError):
            async for message in query(prompt="do the task", options=options):
                if isinstance(message, ResultMessage):
                    results.append(message)
    await asyncio.wait_for(clicker, 10)

    assert not (workdir / "marker.txt").exists()
    [result] = results
    assert result.terminal_reason == "aborted_tools"
    assert [d["tool_use_id"] for d in result.permission_denials] == ["toolu_stop_sdk"]
    assert model.remaining == 1  # the run stopped: the model was never asked to carry on
    request = await store.get(request_id_for("toolu_stop_sdk"))
    assert request.state is State.DENIED and request.stop
    shown = json.dumps(slack.message(request.posted_channel, request.ts).blocks)
    assert "and the agent's run stopped" in shown
    assert Action.APPROVE.value not in shown and Action.DENY_STOP.value not in shown
    events = [(e.fields.get("event"), e.fields.get("request")) async for e in AuditLog(redis).entries()]
    assert ("denied_and_stopped", request.id) in events


async def test_deny_and_stop_through_the_pre_tool_use_gate_stops_the_run(redis_server, start_worker, slack):
    # PreToolUse has no "interrupt": the gate answers deny with "continue": false, which ends the run.
    from tests.test_gate import finish, hook_input, start_gate

    worker = await start_worker()
    process = await start_gate(redis_server.url, hook_input("toolu_stop_pre"))
    await worker.deny("U_BOB", await posted(slack), "Not today.", name="bob", stop=True)
    run = await finish(process)
    answer = json.loads(run.stdout)
    assert answer["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert answer["continue"] is False and "Not today." in answer["stopReason"]


async def test_a_plain_deny_form_never_stops_the_run(redis_server, start_worker, slack, store):
    from tests.test_gate import finish, hook_input, start_gate

    worker = await start_worker()
    process = await start_gate(redis_server.url, hook_input("toolu_plain"))
    await worker.deny("U_BOB", await posted(slack), "No.", name="bob")
    answer = json.loads((await finish(process)).stdout)
    assert "continue" not in answer
    assert not (await store.get(request_id_for("toolu_plain"))).stop
