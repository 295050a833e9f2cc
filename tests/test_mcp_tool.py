"""``python -m bot mcp``: Claude Code's ``--permission-prompt-tool`` asking the team in Slack.

The end-to-end cases run the real CLI (``claude -p``) against the scripted
model, with the MCP server as the CLI starts it: a process on stdio.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import claude_agent_sdk
import pytest
from claude_agent_sdk import (
    PermissionResultAllow,
    PermissionResultDeny,
    PermissionUpdate,
    ToolPermissionContext,
)
from claude_agent_sdk.types import PermissionRuleValue
from mcp import Client

from bot import text as text_module
from bot.agent import mcp_server
from bot.agent.mcp_server import (
    PERMISSION_PROMPT_TOOL,
    TOOL_NAME,
    ApprovalTool,
    McpConfig,
    create_server,
    decision_json,
)
from bot.approvals.model import State, request_id_for
from bot.demo.scripted_model import ScriptedModel, text, tool_use
from bot.slack.ids import Action
from tests.conftest import posted
from tests.fakes.agent_env import clean_agent_env

CLI = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
REPO = Path(__file__).resolve().parents[1]
MARKER = {"command": "echo ran > marker.txt", "description": "Write a marker file"}
UNREACHABLE_REDIS = "redis://127.0.0.1:9/0"  # the discard port: nothing listens


@pytest.fixture(autouse=True)
def _agent_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_agent_env(monkeypatch)


@dataclass
class Run:
    code: int
    result: dict[str, Any]
    workdir: Path

    def wrote(self, name: str) -> bool:
        return (self.workdir / name).exists()


async def claude(tmp_path: Path, model: ScriptedModel, redis_url: str, **cli_env: str) -> Run:
    """``claude -p`` whose permission prompts go to ``python -m bot mcp`` (the README's recipe)."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    # The server runs in the agent's folder: PYTHONPATH makes it this checkout's bot.
    server_env = {
        "REDIS_URL": redis_url,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    config = {
        "mcpServers": {
            "approvals": {
                "command": sys.executable,
                "args": ["-m", "bot", "mcp", "--agent-name", "ci"],
                "env": server_env,
            }
        }
    }
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(model.cli_env(config_dir=tmp_path / "cfg"), **cli_env)
    process = await asyncio.create_subprocess_exec(
        str(CLI),
        "-p",
        "do the task",
        "--output-format",
        "json",
        "--tools",
        "Bash",
        "--permission-prompt-tool",
        PERMISSION_PROMPT_TOOL,
        "--mcp-config",
        json.dumps(config),
        "--strict-mcp-config",
        cwd=workdir,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert out, err.decode()
    return Run(process.returncode or 0, json.loads(out), workdir)


async def request_posted(slack: Any) -> Any:
    """The request's Slack message: the CLI and the MCP server take a few seconds to start."""
    await slack.wait_for(lambda: slack.calls_to("chat.postMessage"), timeout=60)
    return await posted(slack)


@pytest.mark.slow
async def test_approved_in_slack_the_command_runs(tmp_path, redis_server, start_worker, slack, store):
    worker = await start_worker()
    async with ScriptedModel.start([tool_use("Bash", MARKER, id="toolu_mcp_yes"), text("done")]) as model:
        run = asyncio.create_task(claude(tmp_path, model, redis_server.url))
        message = await request_posted(slack)
        await worker.click("U_ALICE", Action.APPROVE, message, name="alice")
        result = await run

    assert result.wrote("marker.txt")
    assert result.result["result"] == "done" and not result.result["is_error"]
    request = await store.get(request_id_for("toolu_mcp_yes"))
    assert request.state is State.APPROVED and request.agent == "ci"
    assert request.tool_input == MARKER


@pytest.mark.slow
async def test_denied_with_a_reason_the_model_reads_it(tmp_path, redis_server, start_worker, slack):
    worker = await start_worker()
    async with ScriptedModel.start([tool_use("Bash", MARKER), text("done")]) as model:
        run = asyncio.create_task(claude(tmp_path, model, redis_server.url))
        await worker.deny("U_BOB", await request_posted(slack), "Wrong cluster.", name="bob")
        result = await run
        [told] = model.tool_results()

    assert not result.wrote("marker.txt")
    assert told.is_error and "Wrong cluster." in told.content
    assert [d["tool_name"] for d in result.result["permission_denials"]] == ["Bash"]


@pytest.mark.slow
async def test_modified_in_slack_the_edited_command_runs(tmp_path, redis_server, start_worker, slack):
    worker = await start_worker()
    async with ScriptedModel.start([tool_use("Bash", MARKER), text("done")]) as model:
        run = asyncio.create_task(claude(tmp_path, model, redis_server.url))
        edited = {"command": "echo edited > edited.txt", "description": "Write another file"}
        await worker.modify("U_ALICE", await request_posted(slack), edited, name="alice")
        result = await run

    assert result.wrote("edited.txt")
    assert not result.wrote("marker.txt")


@pytest.mark.slow
async def test_redis_unreachable_denies(tmp_path):
    async with ScriptedModel.start([tool_use("Bash", MARKER), text("done")]) as model:
        result = await claude(tmp_path, model, UNREACHABLE_REDIS)
        [told] = model.tool_results()

    assert not result.wrote("marker.txt")
    assert (
        told.is_error and "could not be reached" in told.content and "The tool was not run." in told.content
    )


@pytest.mark.slow
async def test_deny_and_stop_ends_the_run(tmp_path, redis_server, start_worker, slack, store):
    worker = await start_worker()
    script = [tool_use("Bash", MARKER, id="toolu_mcp_stop"), text("carrying on regardless")]
    async with ScriptedModel.start(script) as model:
        run = asyncio.create_task(claude(tmp_path, model, redis_server.url))
        await worker.deny("U_BOB", await request_posted(slack), "Wrong cluster.", name="bob", stop=True)
        result = await run

    assert not result.wrote("marker.txt")
    assert result.code == 1
    assert result.result["is_error"] and result.result["terminal_reason"] == "aborted_tools"
    assert model.remaining == 1  # the model was never asked to carry on
    request = await store.get(request_id_for("toolu_mcp_stop"))
    assert request.state is State.DENIED and request.stop


@pytest.mark.slow
async def test_the_host_giving_up_cancels_the_request(tmp_path, redis_server, start_worker, slack, store):
    """MCP_TOOL_TIMEOUT passes: the CLI fails the call (the tool does not run) and cancels it; Slack says so."""
    await start_worker()
    async with ScriptedModel.start([tool_use("Bash", MARKER, id="toolu_mcp_late"), text("done")]) as model:
        result = await claude(tmp_path, model, redis_server.url, MCP_TOOL_TIMEOUT="3000")
        [told] = model.tool_results()

    assert not result.wrote("marker.txt")
    assert told.is_error and "timed out" in told.content
    message = await posted(slack)

    def shown() -> str:
        return json.dumps(slack.message(message.channel, message.ts).blocks)

    await slack.wait_for(lambda: "Cancelled" in shown(), timeout=30)
    assert (await store.get(request_id_for("toolu_mcp_late"))).state is State.CANCELLED


# -- in process: the JSON the CLI reads ----------------------------------------------


class Answers:
    """A stand-in approver that answers each call with the next result."""

    def __init__(self, *results: Any) -> None:
        self.results = list(results)
        self.calls: list[tuple[str, dict[str, Any], ToolPermissionContext]] = []

    async def can_use_tool(
        self, tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext
    ) -> Any:
        self.calls.append((tool_name, tool_input, context))
        return self.results.pop(0)

    async def close(self) -> None:
        pass


async def call(tool: ApprovalTool, arguments: dict[str, Any]) -> dict[str, Any]:
    async with Client(create_server(tool)) as client:
        [listed] = (await client.list_tools()).tools
        assert listed.name == TOOL_NAME
        result = await client.call_tool(TOOL_NAME, arguments)
    assert not result.is_error
    [block] = result.content
    return json.loads(block.text)


def test_results_map_to_the_json_claude_code_reads():
    command = {"command": "make deploy"}
    rule = PermissionUpdate(
        type="addRules",
        rules=[PermissionRuleValue(tool_name="Bash", rule_content="make:*")],
        behavior="allow",
        destination="session",
    )
    assert decision_json(PermissionResultAllow(), command) == {"behavior": "allow", "updatedInput": command}
    assert decision_json(PermissionResultAllow(updated_input={"command": "make plan"}), command) == {
        "behavior": "allow",
        "updatedInput": {"command": "make plan"},
    }
    assert decision_json(PermissionResultAllow(updated_permissions=[rule]), command) == {
        "behavior": "allow",
        "updatedInput": command,
        "updatedPermissions": [
            {
                "type": "addRules",
                "destination": "session",
                "behavior": "allow",
                "rules": [{"toolName": "Bash", "ruleContent": "make:*"}],
            }
        ],
    }
    assert decision_json(PermissionResultDeny(message="No."), command) == {
        "behavior": "deny",
        "message": "No.",
    }
    assert decision_json(PermissionResultDeny(message="Stop.", interrupt=True), command) == {
        "behavior": "deny",
        "message": "Stop.",
        "interrupt": True,
    }


async def test_a_call_reaches_the_approver_with_its_tool_use_id():
    answers = Answers(PermissionResultAllow(), PermissionResultAllow())
    tool = ApprovalTool(answers)
    await call(tool, {"tool_name": "Bash", "input": MARKER, "tool_use_id": "toolu_given"})
    await call(tool, {"tool_name": "Bash", "input": MARKER})
    [(_, _, given), (_, _, made)] = answers.calls
    assert given.tool_use_id == "toolu_given"
    assert made.tool_use_id and made.tool_use_id != "toolu_given"  # one made up: a request of its own


async def test_a_malformed_call_is_denied():
    answers = Answers()
    answer = await call(ApprovalTool(answers), {"input": MARKER})
    assert answer["behavior"] == "deny"
    assert "tool_name" in answer["message"] and "The tool was not run." in answer["message"]
    assert answers.calls == []


async def test_an_approver_that_fails_denies():
    class Broken(Answers):
        async def can_use_tool(self, *args: Any) -> Any:
            raise RuntimeError("bug")

    answer = await call(ApprovalTool(Broken()), {"tool_name": "Bash", "input": MARKER})
    assert answer["behavior"] == "deny" and "RuntimeError: bug" in answer["message"]


async def test_without_redis_url_every_call_is_denied_naming_it(monkeypatch, tmp_path):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    tool = ApprovalTool.from_env(McpConfig(agent_name="ci"))
    answer = await call(tool, {"tool_name": "Bash", "input": MARKER, "tool_use_id": "toolu_1"})
    assert answer["behavior"] == "deny"
    assert "REDIS_URL is not set" in answer["message"] and "The tool was not run." in answer["message"]


async def test_a_waiting_call_reports_progress(monkeypatch):
    """Claude Code aborts an MCP call silent for CLAUDE_CODE_MCP_TOOL_IDLE_TIMEOUT; progress resets that clock."""
    monkeypatch.setattr(mcp_server, "HEARTBEAT_SECONDS", 0.01)
    decided = asyncio.Event()

    class Slow(Answers):
        async def can_use_tool(self, *args: Any) -> Any:
            await asyncio.wait_for(decided.wait(), 10)
            return PermissionResultAllow()

    beats: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        beats.append(message)
        if len(beats) == 3:
            decided.set()

    async with Client(create_server(ApprovalTool(Slow()))) as client:
        result = await client.call_tool(
            TOOL_NAME, {"tool_name": "Bash", "input": MARKER}, progress_callback=on_progress
        )

    assert json.loads(result.content[0].text)["behavior"] == "allow"
    assert beats[:3] == [text_module.agent.MCP_WAITING] * 3
