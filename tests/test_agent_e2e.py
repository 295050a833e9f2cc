"""End to end: the real claude-agent-sdk and its bundled CLI, a scripted model,
SlackApprover, real bot workers, the fake Slack API and real Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from claude_agent_sdk import ClaudeAgentOptions, ResultMessage, query

from bot import SlackApprover
from bot.demo.scripted_model import ScriptedModel, Step, text, tool_use
from bot.slack.ids import Action
from tests.conftest import posted
from tests.fakes.agent_env import clean_agent_env

pytestmark = pytest.mark.slow  # every test runs the real Claude Code CLI


@pytest.fixture(autouse=True)
def _agent_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_agent_env(monkeypatch)


async def run_agent(
    tmp_path: Path, approver: SlackApprover, script: list[Step], *, tools: list[str] | None = None
) -> ScriptedModel:
    """Run one agent turn; return the model fake, which saw what the model would see."""
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    async with ScriptedModel.start(script) as model:
        options = ClaudeAgentOptions(
            cwd=workdir,
            setting_sources=[],
            tools=tools or ["Bash"],
            env=model.cli_env(config_dir=tmp_path / "cfg"),
            can_use_tool=approver.can_use_tool,
            permission_mode="default",
        )
        results = [
            m async for m in query(prompt="do the task", options=options) if isinstance(m, ResultMessage)
        ]
    assert len(results) == 1
    assert model.remaining == 0
    return model


def write_marker(name: str = "marker.txt") -> Step:
    # Read-only commands never reach can_use_tool in the CLI's default mode:
    # the test needs one that writes.
    return tool_use("Bash", {"command": f"echo approved > {name}", "description": "Write a marker file"})


async def test_approved_in_slack_the_tool_runs(tmp_path, start_worker, make_approver, slack):
    worker = await start_worker()
    approver = await make_approver(agent_name="e2e")

    async def approve_when_posted() -> None:
        message = await posted(slack)
        await worker.click("U_ALICE", Action.APPROVE, message, name="alice")

    clicker = asyncio.create_task(approve_when_posted())
    model = await run_agent(tmp_path, approver, [write_marker(), text("done")])
    await clicker

    assert (tmp_path / "work" / "marker.txt").read_text() == "approved\n"
    [result] = model.tool_results()
    assert not result.is_error
    # Escaped as Slack requires; Slack renders "&gt;" as ">".
    assert "echo approved &gt; marker.txt" in posted_text(slack)


async def test_denied_in_slack_the_tool_does_not_run_and_the_model_is_told_why(
    tmp_path, start_worker, make_approver, slack
):
    worker = await start_worker()
    approver = await make_approver()
    reason = "Use the staging cluster first."

    async def deny_when_posted() -> None:
        message = await posted(slack)
        await worker.deny("U_BOB", message, reason, name="bob")

    clicker = asyncio.create_task(deny_when_posted())
    model = await run_agent(tmp_path, approver, [write_marker(), text("ok, I will not")])
    await clicker

    assert not (tmp_path / "work" / "marker.txt").exists()
    [result] = model.tool_results()
    assert result.is_error
    assert "Denied in Slack by @bob (U_BOB)" in result.content
    assert f"Reason: {reason}" in result.content


async def test_nobody_answers_the_request_expires_and_the_tool_does_not_run(
    tmp_path, start_worker, make_approver, slack
):
    await start_worker()
    approver = await make_approver(timeout=1)
    model = await run_agent(tmp_path, approver, [write_marker(), text("ok")])

    assert not (tmp_path / "work" / "marker.txt").exists()
    [result] = model.tool_results()
    assert result.is_error
    assert "expired" in result.content
    [message] = slack.roots()
    await slack.wait_for(lambda: message.edits >= 1)
    assert "Expired" in message.blocks[0]["text"]["text"]


async def test_two_workers_post_one_message_per_request(tmp_path, start_worker, make_approver, slack):
    first, second = await start_worker(), await start_worker()
    approver = await make_approver()

    async def approve_each() -> None:
        for count, worker in ((1, first), (2, second)):
            message = await posted(slack, count)
            await worker.click("U_ALICE", Action.APPROVE, message)

    clicker = asyncio.create_task(approve_each())
    model = await run_agent(
        tmp_path, approver, [write_marker("one.txt"), write_marker("two.txt"), text("done")]
    )
    await clicker

    assert (tmp_path / "work" / "one.txt").exists() and (tmp_path / "work" / "two.txt").exists()
    assert [r.is_error for r in model.tool_results()] == [False, False]
    await asyncio.sleep(0.2)
    assert len(slack.roots()) == 2


def posted_text(slack) -> str:
    [message] = slack.roots()
    return "\n".join(str(b) for b in message.blocks)


async def test_a_command_modified_in_slack_is_the_one_that_runs(tmp_path, start_worker, make_approver, slack):
    worker = await start_worker()
    approver = await make_approver()

    async def modify_when_posted() -> None:
        message = await posted(slack)
        await worker.modify(
            "U_ALICE", message, {"command": "echo edited > edited.txt", "description": "Write it elsewhere"}
        )

    clicker = asyncio.create_task(modify_when_posted())
    model = await run_agent(tmp_path, approver, [write_marker(), text("done")])
    await clicker

    assert not (tmp_path / "work" / "marker.txt").exists()
    assert (tmp_path / "work" / "edited.txt").read_text() == "edited\n"
    [result] = model.tool_results()
    assert not result.is_error


async def test_questions_answered_in_slack_reach_the_model_as_answers(
    tmp_path, start_worker, make_approver, slack
):
    from tests.test_questions import ASKED

    worker = await start_worker()
    approver = await make_approver()

    async def answer_when_posted() -> None:
        message = await posted(slack)
        await worker.answer("U_ALICE", message, chosen={0: [0], 1: [0, 1]})

    clicker = asyncio.create_task(answer_when_posted())
    model = await run_agent(
        tmp_path, approver, [tool_use("AskUserQuestion", ASKED), text("thanks")], tools=["AskUserQuestion"]
    )
    await clicker

    [result] = model.tool_results()
    assert not result.is_error
    # The CLI's wording when every answer is an exact option label.
    assert result.content.startswith(
        'Your questions have been answered: "Which environment?"="staging", "Which checks?"="lint, tests".'
    )


async def test_always_allow_skips_the_question_for_the_session_and_for_the_team(
    tmp_path, start_worker, make_approver, slack, redis
):
    worker = await start_worker()
    touch = {"command": "touch marker.txt"}

    async def always_allow_when_posted() -> None:
        message = await posted(slack)
        await worker.click("U_ALICE", Action.ALWAYS_ALLOW, message)

    clicker = asyncio.create_task(always_allow_when_posted())
    approver = await make_approver()
    model = await run_agent(
        tmp_path, approver, [tool_use("Bash", touch), tool_use("Bash", touch), text("done")]
    )
    await clicker
    # The CLI applied the granted session rule: the second call was not asked.
    assert [r.is_error for r in model.tool_results()] == [False, False]
    assert len(slack.roots()) == 1
    assert not (tmp_path / "work" / ".claude").exists()  # nothing written to the agent's settings

    # A new session (another agent run): the team allow-list answers at once.
    (tmp_path / "work" / "marker.txt").unlink()
    model = await run_agent(tmp_path, await make_approver(), [tool_use("Bash", touch), text("done")])
    assert [r.is_error for r in model.tool_results()] == [False]
    assert (tmp_path / "work" / "marker.txt").exists()
    assert len(slack.roots()) == 1
