"""End-to-end checks of the scripted model fake with the real SDK and CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk import (
    ClaudeAgentOptions,
    PermissionResultAllow,
    PermissionResultDeny,
    ResultMessage,
    ToolPermissionContext,
    query,
)

from bot.demo.scripted_model import ScriptedModel, ToolResult, text, tool_use
from tests.fakes.agent_env import clean_agent_env

PermissionResult = PermissionResultAllow | PermissionResultDeny


async def _run_marker_turn(tmp_path: Path, decision: PermissionResult) -> ToolResult:
    """Script one Bash call writing marker.txt, answer its permission prompt.

    Returns the tool_result the CLI reported back to the model.
    """
    workdir = tmp_path / "work"
    workdir.mkdir()
    asked: list[str] = []

    async def can_use_tool(
        name: str, input: dict[str, Any], context: ToolPermissionContext
    ) -> PermissionResult:
        asked.append(name)
        if isinstance(decision, PermissionResultAllow):
            return PermissionResultAllow(updated_input=input)
        return decision

    bash = tool_use("Bash", {"command": "echo hi > marker.txt", "description": "write marker"})
    async with ScriptedModel.start([bash, text("done")]) as model:
        options = ClaudeAgentOptions(
            cwd=workdir,
            setting_sources=[],
            tools=["Bash"],
            env=model.cli_env(config_dir=tmp_path / "cfg"),
            can_use_tool=can_use_tool,
            permission_mode="default",
        )
        results = [
            message
            async for message in query(prompt="write the marker", options=options)
            if isinstance(message, ResultMessage)
        ]
    assert len(results) == 1 and not results[0].is_error
    assert asked == ["Bash"]
    assert model.remaining == 0
    assert model.unknown_paths == []
    [result] = model.tool_results()
    assert result.tool_use_id == bash.tool_use_ids[0]
    return result


@pytest.mark.slow
async def test_allowed_tool_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_agent_env(monkeypatch)

    result = await _run_marker_turn(tmp_path, PermissionResultAllow())

    assert (tmp_path / "work" / "marker.txt").read_text() == "hi\n"
    assert not result.is_error


@pytest.mark.slow
async def test_denied_tool_does_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_agent_env(monkeypatch)

    result = await _run_marker_turn(tmp_path, PermissionResultDeny(message="denied by test"))

    assert not (tmp_path / "work" / "marker.txt").exists()
    assert result.is_error
    assert "denied by test" in result.content
