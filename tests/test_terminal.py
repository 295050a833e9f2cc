"""The gate in the real Claude Code TUI: Slack and the terminal both ask, the first answer wins.

The interactive CLI (driven in tmux by :class:`tests.fakes.terminal.Terminal`)
shows its own permission dialog at once while the gate's PermissionRequest
hook asks Slack. Measured on CLI 2.1.337: a hook answer closes the dialog; a
terminal No/Esc sends the waiting hook SIGTERM; a terminal Yes does not
signal the hook, the tool runs and its PostToolUse hook fires. So the gate is
installed for both events, as a user installs it, and each test checks what
people see: the file the command wrote (or not), the terminal's screen, the
Slack message, and what the model was told.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.approvals.model import TERMINAL_ACTOR, State
from bot.approvals.store import RequestStore
from bot.demo.scripted_model import ScriptedModel, text, tool_use
from bot.slack.ids import Action
from tests.conftest import posted
from tests.fakes.agent_env import clean_agent_env
from tests.fakes.claude_cli import gate_hook
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_records import PostedMessage
from tests.fakes.terminal import PERMISSION_DIALOG, PROMPT_READY, Terminal
from tests.fakes.worker import Worker

pytestmark = pytest.mark.slow  # every test drives Claude Code's TUI in tmux

GATE_ARGS = "--agent-name laptop"
SETTINGS = {
    "hooks": {
        **gate_hook("PermissionRequest", GATE_ARGS)["hooks"],
        # A terminal Yes reaches the gate only as the call's PostToolUse.
        **gate_hook("PostToolUse", GATE_ARGS)["hooks"],
    }
}
COMMAND = {"command": "echo ran > marker.txt", "description": "Write a marker file"}
FINISHED = "all done"
"""The model's last words: on screen once the turn is over."""

SCREEN_WAIT = 20.0
"""Seconds to wait for something on screen (a bound, not a speed target: the CLI, the
gate's Python start-up and the worker share two cores with other test runs)."""
SLACK_WAIT = 15.0


@asynccontextmanager
async def claude_in_a_terminal(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Terminal, ScriptedModel, Path]]:
    """The TUI with the gate installed, its prompt sent; the model runs ``COMMAND``, then says ``FINISHED``."""
    clean_agent_env(monkeypatch)
    work = tmp_path / "work"
    work.mkdir()
    config_dir = tmp_path / "cfg"
    async with ScriptedModel.start([tool_use("Bash", COMMAND), text(FINISHED)]) as model:
        env = {**model.cli_env(config_dir), "REDIS_URL": redis_url}
        with Terminal.start(cwd=work, config_dir=config_dir, env=env, settings=SETTINGS) as term:
            await term.await_for(PROMPT_READY, timeout=SCREEN_WAIT)
            term.type("write the marker")
            term.send("Enter")
            yield term, model, work


async def asked_in_both(term: Terminal, slack: FakeSlack) -> PostedMessage:
    """The dialog on screen and the request in Slack, at the same time."""
    await term.await_for(PERMISSION_DIALOG, timeout=SCREEN_WAIT)
    # posted() alone waits 5 s; the hook's Python start-up shares two busy cores.
    await slack.wait_for(lambda: slack.roots(), timeout=SLACK_WAIT)
    message = await posted(slack)
    blocks = shown(slack, message)
    assert "echo ran &gt; marker.txt" in blocks and "*Agent:* laptop" in blocks  # Slack escapes ">"
    assert PERMISSION_DIALOG in term.screen()  # still up: neither side has answered
    return message


def shown(slack: FakeSlack, message: PostedMessage) -> str:
    """What Slack shows for the message now, as text to search."""
    return json.dumps(slack.message(message.channel, message.ts).blocks)


async def slack_shows(slack: FakeSlack, message: PostedMessage, words: str) -> str:
    """Once the message shows ``words``: what it shows."""
    await slack.wait_for(lambda: words in shown(slack, message), timeout=SLACK_WAIT)
    return shown(slack, message)


def request_of(message: PostedMessage) -> str:
    """The request id a message's Approve button carries."""
    for block in message.blocks:
        for element in block.get("elements", []):
            if element.get("action_id") == Action.APPROVE.value:
                return str(element["value"])
    raise AssertionError("the message shows no Approve button")


async def test_approve_in_slack_closes_the_terminal_dialog_and_the_command_runs(
    tmp_path, monkeypatch, redis_server, start_worker, slack
):
    worker: Worker = await start_worker()
    async with claude_in_a_terminal(tmp_path, redis_server.url, monkeypatch) as (term, model, work):
        message = await asked_in_both(term, slack)
        assert not (work / "marker.txt").exists()

        await worker.click("U_ALICE", Action.APPROVE, message, name="alice")
        await term.await_for(FINISHED, timeout=SCREEN_WAIT)
        assert PERMISSION_DIALOG not in term.screen()

    assert (work / "marker.txt").read_text() == "ran\n"
    [result] = model.tool_results()
    assert not result.is_error
    blocks = await slack_shows(slack, message, "Approved by <@U_ALICE>")
    assert "terminal" not in blocks  # the PostToolUse of a call Slack allowed is no terminal answer


async def test_yes_in_the_terminal_runs_the_command_and_ends_the_request_in_slack(
    tmp_path, monkeypatch, redis_server, start_worker, slack, store: RequestStore
):
    worker: Worker = await start_worker()
    async with claude_in_a_terminal(tmp_path, redis_server.url, monkeypatch) as (term, model, work):
        message = await asked_in_both(term, slack)
        stale = copy.deepcopy(message)  # what a Slack client that has not refreshed still shows

        await term.answer_dialog("Enter")  # "1. Yes" is preselected
        await term.await_for(FINISHED, timeout=SCREEN_WAIT)
        blocks = await slack_shows(slack, message, "Answered in the terminal")

    assert (work / "marker.txt").read_text() == "ran\n"
    [result] = model.tool_results()
    assert not result.is_error  # the gate's late answer (the request is over) changed nothing
    assert Action.APPROVE.value not in blocks  # nothing left to click

    await worker.click("U_ALICE", Action.APPROVE, stale, name="alice")
    told = await slack.wait_for_call("chat.postEphemeral", timeout=SLACK_WAIT)
    assert told.args["user"] == "U_ALICE" and "answered in the terminal" in told.args["text"]
    request = await store.get(request_of(stale))
    assert request is not None and request.state is State.CANCELLED and request.decided_by == TERMINAL_ACTOR
    assert "Answered in the terminal" in shown(slack, message)


@pytest.mark.parametrize("keys", ["4", "Escape"], ids=["no", "esc"])  # "4. No" in CLI 2.1.337's dialog
async def test_no_in_the_terminal_does_not_run_the_command_and_ends_the_request_in_slack(
    keys, tmp_path, monkeypatch, redis_server, start_worker, slack
):
    await start_worker()
    async with claude_in_a_terminal(tmp_path, redis_server.url, monkeypatch) as (term, _model, work):
        message = await asked_in_both(term, slack)

        await term.answer_dialog(keys)
        # Both No and Esc interrupt the turn: the model is not asked again.
        await term.await_for("Interrupted · What should Claude do instead?", timeout=SCREEN_WAIT)
        blocks = await slack_shows(slack, message, "Answered in the terminal")

    assert not (work / "marker.txt").exists()
    assert Action.APPROVE.value not in blocks


async def test_deny_in_slack_closes_the_terminal_dialog_and_the_model_reads_why(
    tmp_path, monkeypatch, redis_server, start_worker, slack
):
    worker: Worker = await start_worker()
    async with claude_in_a_terminal(tmp_path, redis_server.url, monkeypatch) as (term, model, work):
        message = await asked_in_both(term, slack)

        await worker.deny("U_BOB", message, "Not on Fridays.", name="bob")
        await term.await_for(FINISHED, timeout=SCREEN_WAIT)
        assert PERMISSION_DIALOG not in term.screen()

    assert not (work / "marker.txt").exists()
    [result] = model.tool_results()
    assert result.is_error
    assert "Denied in Slack by @bob (U_BOB)" in result.content and "Not on Fridays." in result.content
    await slack_shows(slack, message, "Denied by <@U_BOB>")
