"""Defer mode end to end: the real SDK and bundled CLI run the gate hook
(``python -m bot gate``), the run stops while the team decides, and the
session is resumed as the README shows."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shlex
import sys
from pathlib import Path

import pytest
from claude_agent_sdk import ClaudeAgentOptions, ClaudeSDKClient, ResultMessage, query

from bot import SlackApprover
from bot.approvals.model import State
from bot.demo.scripted_model import ScriptedModel, text, tool_use
from bot.slack.ids import Action
from tests.cluster_fixtures import ON_BOTH
from tests.conftest import policy_file, posted
from tests.fakes.agent_env import clean_agent_env


@pytest.fixture(autouse=True)
def _agent_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_agent_env(monkeypatch)


def agent_options(
    tmp_path: Path, approver: SlackApprover, model: ScriptedModel, **kwargs
) -> ClaudeAgentOptions:
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    return approver.options(
        cwd=workdir,
        setting_sources=[],
        tools=kwargs.pop("tools", ["Bash"]),
        env=model.cli_env(config_dir=tmp_path / "cfg"),
        permission_mode="default",
        **kwargs,
    )


async def first_run(options: ClaudeAgentOptions, prompt: str = "do the task") -> ResultMessage:
    [result] = [m async for m in query(prompt=prompt, options=options) if isinstance(m, ResultMessage)]
    return result


async def resume(options: ClaudeAgentOptions, session_id: str) -> ResultMessage:
    """The README's recipe: connect with no prompt, read the replayed turn."""
    async with ClaudeSDKClient(dataclasses.replace(options, resume=session_id)) as client:
        [result] = [m async for m in client.receive_response() if isinstance(m, ResultMessage)]
    return result


MARKER = {"command": "echo ran >> marker.txt", "description": "Append to a marker file"}


async def deferred_run(tmp_path, approver, model) -> tuple[ClaudeAgentOptions, ResultMessage]:
    options = agent_options(tmp_path, approver, model)
    result = await first_run(options)
    assert result.stop_reason == "tool_deferred"
    assert result.deferred_tool_use is not None and result.deferred_tool_use.input == MARKER
    assert not (tmp_path / "work" / "marker.txt").exists()
    return options, result


@pytest.mark.slow
@ON_BOTH
async def test_approved_while_deferred_the_resumed_session_runs_the_tool_once(
    tmp_path, start_worker, make_approver, slack
):
    worker = await start_worker()
    approver = await make_approver(mode="defer")
    async with ScriptedModel.start([tool_use("Bash", MARKER), text("done")]) as model:
        options, deferred = await deferred_run(tmp_path, approver, model)
        message = await posted(slack)

        # Resumed before anyone decided: deferred again, nothing posted twice.
        again = await resume(options, deferred.session_id)
        assert again.stop_reason == "tool_deferred"

        await worker.click("U_ALICE", Action.APPROVE, message, name="alice")
        decided = await asyncio.wait_for(approver.wait_for_decision(deferred.deferred_tool_use.id), 5)
        assert decided.state is State.APPROVED
        final = await resume(options, deferred.session_id)

    assert final.stop_reason == "end_turn"
    assert (tmp_path / "work" / "marker.txt").read_text() == "ran\n"  # once
    [result] = model.tool_results()
    assert not result.is_error
    assert len(slack.roots()) == 1


@pytest.mark.slow
@ON_BOTH
async def test_denied_while_deferred_the_tool_never_runs_and_the_model_hears_why(
    tmp_path, start_worker, make_approver, slack
):
    worker = await start_worker()
    approver = await make_approver(mode="defer")
    async with ScriptedModel.start([tool_use("Bash", MARKER), text("understood")]) as model:
        options, deferred = await deferred_run(tmp_path, approver, model)
        await worker.deny("U_BOB", await posted(slack), "Not on a Friday.", name="bob")
        await approver.wait_for_decision(deferred.deferred_tool_use.id)
        await resume(options, deferred.session_id)

    assert not (tmp_path / "work" / "marker.txt").exists()
    [result] = model.tool_results()
    assert result.is_error
    assert "Denied in Slack by @bob (U_BOB)" in result.content
    assert "Reason: Not on a Friday." in result.content


@pytest.mark.slow
async def test_modified_while_deferred_the_resumed_session_runs_the_edit(
    tmp_path, start_worker, make_approver, slack
):
    worker = await start_worker()
    approver = await make_approver(mode="defer")
    async with ScriptedModel.start([tool_use("Bash", MARKER), text("done")]) as model:
        options, deferred = await deferred_run(tmp_path, approver, model)
        await worker.modify("U_ALICE", await posted(slack), {"command": "echo edited > edited.txt"})
        await approver.wait_for_decision(deferred.deferred_tool_use.id)
        await resume(options, deferred.session_id)

    assert not (tmp_path / "work" / "marker.txt").exists()
    assert (tmp_path / "work" / "edited.txt").read_text() == "edited\n"
    [result] = model.tool_results()
    assert not result.is_error


@pytest.mark.slow
async def test_a_resume_without_the_gate_still_cannot_run_a_denied_call(
    tmp_path, start_worker, make_approver, slack
):
    worker = await start_worker()
    approver = await make_approver(mode="defer")
    async with ScriptedModel.start([tool_use("Bash", MARKER), text("understood")]) as model:
        options, deferred = await deferred_run(tmp_path, approver, model)
        await worker.deny("U_BOB", await posted(slack), "No.", name="bob")
        await approver.wait_for_decision(deferred.deferred_tool_use.id)
        # Someone resumes with plain options: no hook, only can_use_tool.
        bare = dataclasses.replace(options, settings=None)
        await resume(bare, deferred.session_id)

    assert not (tmp_path / "work" / "marker.txt").exists()
    [result] = model.tool_results()
    assert result.is_error and "Reason: No." in result.content


@pytest.mark.slow
async def test_a_policy_rule_defers_its_calls_while_others_wait_live(
    tmp_path, start_worker, make_approver, slack
):
    policy = policy_file(
        tmp_path,
        """
rules:
  - name: deploys
    tool: Bash
    command: deploy
    mode: defer
""",
    )
    worker = await start_worker(approval_policy=policy)
    approver = await make_approver()  # wait mode
    deploy = {"command": "echo deploy > deployed.txt", "description": "Deploy"}
    async with ScriptedModel.start(
        [tool_use("Bash", MARKER), tool_use("Bash", deploy), text("done")]
    ) as model:
        options = agent_options(tmp_path, approver, model)

        async def approve_first() -> None:
            await worker.click("U_ALICE", Action.APPROVE, await posted(slack))

        clicker = asyncio.create_task(approve_first())
        result = await first_run(options)
        await clicker

    # The first call waited in can_use_tool and ran; the deploy ended the run.
    assert (tmp_path / "work" / "marker.txt").exists()
    assert result.stop_reason == "tool_deferred"
    assert result.deferred_tool_use.input == deploy
    assert not (tmp_path / "work" / "deployed.txt").exists()
    assert len(slack.roots()) == 2


@pytest.mark.slow
async def test_wait_for_decision_survives_a_redis_restart(tmp_path, make_approver, store, redis_server):
    from bot.approvals.model import Decision, NewRequest

    approver = await make_approver(mode="defer")
    await store.create(
        NewRequest(id=_id("toolu_restart"), tool_name="Bash", tool_input=MARKER, tool_use_id="toolu_restart")
    )
    waiting = asyncio.create_task(approver.wait_for_decision("toolu_restart"))
    await asyncio.sleep(0.2)
    redis_server.restart()  # AOF on: the pending request survives
    await store.decide(
        _id("toolu_restart"), Decision(State.APPROVED, actor="U_ALICE", actor_name="alice", revision=0)
    )
    decided = await asyncio.wait_for(waiting, 10)
    assert decided.state is State.APPROVED and decided.decided_by == "U_ALICE"


async def test_wait_for_decision_on_an_unknown_call_says_so(make_approver):
    approver = await make_approver()
    with pytest.raises(LookupError, match="toolu_never_asked"):
        await approver.wait_for_decision("toolu_never_asked")


def _id(tool_use_id: str) -> str:
    from bot.approvals.model import request_id_for

    return request_id_for(tool_use_id)


@pytest.mark.slow
async def test_parallel_calls_are_not_deferred_they_wait_in_can_use_tool(
    tmp_path, start_worker, make_approver, slack
):
    from bot.demo.scripted_model import tool_uses

    worker = await start_worker()
    approver = await make_approver(mode="defer")
    one = {"command": "echo 1 > one.txt", "description": "one"}
    two = {"command": "echo 2 > two.txt", "description": "two"}
    async with ScriptedModel.start(
        [tool_uses(tool_use("Bash", one), tool_use("Bash", two)), text("done")]
    ) as model:

        async def approve_both() -> None:
            for count in (1, 2):
                await worker.click("U_ALICE", Action.APPROVE, await posted(slack, count))

        clicker = asyncio.create_task(approve_both())
        # Deferring one call of several would make the CLI drop the others:
        # the gate hands both to can_use_tool, which waits live.
        result = await first_run(agent_options(tmp_path, approver, model))
        await clicker

    assert result.stop_reason == "end_turn"
    assert (tmp_path / "work" / "one.txt").exists() and (tmp_path / "work" / "two.txt").exists()
    assert [r.is_error for r in model.tool_results()] == [False, False]
    assert len(slack.roots()) == 2


def test_settings_merge_with_your_own_and_name_the_gate(redis_server):
    approver = SlackApprover(redis_server.url, mode="defer", agent_name="nightly", channel="C0DEPLOYS")
    mine = {"env": {"FOO": "1"}, "hooks": {"PreToolUse": [{"matcher": "Read", "hooks": []}]}}
    merged = json.loads(approver.settings(mine))
    assert merged["env"] == {"FOO": "1"}
    [own, gate] = merged["hooks"]["PreToolUse"]
    assert own == {"matcher": "Read", "hooks": []}
    [hook] = gate["hooks"]
    argv = shlex.split(hook["command"])
    assert argv[:4] == [sys.executable, "-m", "bot", "gate"]
    assert argv[argv.index("--mode") + 1] == "defer" and argv[argv.index("--channel") + 1] == "C0DEPLOYS"
    assert redis_server.url not in hook["command"]  # credentials travel in the environment only
    assert approver.options().env["REDIS_URL"] == redis_server.url
    assert mine["hooks"]["PreToolUse"] == [{"matcher": "Read", "hooks": []}]  # not modified


def test_a_cost_estimator_the_gate_cannot_import_is_refused(redis_server):
    approver = SlackApprover(redis_server.url, mode="defer", cost_estimator=lambda tool, args: 1.0)
    with pytest.raises(ValueError, match="module-level function"):
        approver.settings()
    named = SlackApprover(redis_server.url, mode="defer", cost_estimator=estimate)
    assert "--cost-estimator tests.test_defer:estimate" in named.settings()


def estimate(tool_name: str, tool_input: dict) -> float:
    return 12.5


def test_options_keep_your_settings_file(redis_server, tmp_path):
    (tmp_path / "mine.json").write_text(json.dumps({"env": {"FOO": "1"}}))
    options = SlackApprover(redis_server.url, mode="defer").options(cwd=tmp_path, settings="mine.json")
    merged = json.loads(options.settings)
    assert merged["env"] == {"FOO": "1"} and len(merged["hooks"]["PreToolUse"]) == 1
