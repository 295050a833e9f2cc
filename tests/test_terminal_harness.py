"""The real Claude Code TUI in tmux: the permission dialog is answered in the terminal.

Shows how :class:`tests.fakes.terminal.Terminal` drives the interactive CLI
against the scripted model. The PermissionRequest hook here is a stand-in
that only records its input and gives no decision (exit 0, empty stdout), so
Claude Code falls back to its own dialog and the person decides.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bot.demo.scripted_model import ScriptedModel, text, tool_use
from tests.fakes.agent_env import clean_agent_env
from tests.fakes.terminal import PERMISSION_DIALOG, PROMPT_READY, Terminal

pytestmark = pytest.mark.slow  # it drives Claude Code's TUI in tmux

RECORDING_HOOK = """\
import json, sys
with open(sys.argv[1], "a") as log:
    log.write(json.dumps(json.load(sys.stdin)) + "\\n")
"""


async def test_person_approves_in_the_terminal_and_the_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_agent_env(monkeypatch)
    work = tmp_path / "work"
    work.mkdir()
    hook_script = tmp_path / "record.py"
    hook_script.write_text(RECORDING_HOOK)
    hook_log = tmp_path / "hook.jsonl"
    hook = {"type": "command", "command": f"{sys.executable} {hook_script} {hook_log}", "timeout": 30}
    settings = {"hooks": {"PermissionRequest": [{"matcher": "Bash", "hooks": [hook]}]}}
    command = {"command": "echo ran > marker.txt", "description": "Write a marker file"}

    async with ScriptedModel.start([tool_use("Bash", command), text("all done")]) as model:
        config_dir = tmp_path / "cfg"
        with Terminal.start(
            cwd=work, config_dir=config_dir, env=model.cli_env(config_dir), settings=settings
        ) as term:
            await term.await_for(PROMPT_READY, timeout=20)
            term.type("write the marker")
            term.send("Enter")

            await term.await_for(PERMISSION_DIALOG, timeout=15)
            assert "echo ran > marker.txt" in term.screen()
            assert not (work / "marker.txt").exists()

            await term.answer_dialog("Enter")  # "1. Yes" is preselected
            await term.await_for("all done", timeout=15)

    assert (work / "marker.txt").read_text() == "ran\n"
    [result] = model.tool_results()
    assert not result.is_error
    [hook_input] = [json.loads(line) for line in hook_log.read_text().splitlines()]
    assert hook_input["hook_event_name"] == "PermissionRequest"
    assert hook_input["tool_input"] == command
