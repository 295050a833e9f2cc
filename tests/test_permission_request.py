"""``python -m bot gate`` answering Claude Code's ``PermissionRequest`` hook, as a process:
hook JSON on stdin (no ``tool_use_id``), a ``decision`` on stdout."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Any

import pytest

from bot.approvals.model import State, call_hash, request_id_for
from bot.slack.ids import Action
from tests.conftest import posted
from tests.test_gate import HookRun, finish, start_gate

COMMAND = {"command": "make build", "description": "Build it"}
SUGGESTED = [
    {
        "type": "addRules",
        "rules": [{"toolName": "Bash", "ruleContent": "make build *"}],
        "behavior": "allow",
        "destination": "localSettings",
    },
    {"type": "setMode", "mode": "acceptEdits", "destination": "session"},
]


def permission_request(
    tool_input: dict[str, Any] | None = None,
    *,
    session: str = "sess-pr",
    prompt: str = "prompt-1",
    **extra: Any,
) -> dict[str, Any]:
    """What Claude Code 2.1.337 writes to a PermissionRequest hook's stdin."""
    return {
        "session_id": session,
        "transcript_path": f"/nonexistent/{session}.jsonl",
        "cwd": "/tmp",
        "prompt_id": prompt,
        "permission_mode": "default",
        "effort": {"level": "medium"},
        "hook_event_name": "PermissionRequest",
        "tool_name": "Bash",
        "tool_input": tool_input or COMMAND,
        "permission_suggestions": SUGGESTED,
        **extra,
    }


def asked_request_id(payload: dict[str, Any], nth: int = 0) -> str:
    """The request of the ``nth`` identical call of a prompt (``agent.call_claims``)."""
    name = f"{payload['prompt_id']}:{call_hash(payload['tool_name'], payload['tool_input'])[:32]}:{nth}"
    return request_id_for(f"{payload['session_id']}:{name}")


def decision(run: HookRun) -> dict[str, Any]:
    assert run.code == 0, run.stderr
    output = json.loads(run.stdout)["hookSpecificOutput"]
    assert output["hookEventName"] == "PermissionRequest"
    return output["decision"]


async def ask(
    redis_url: str, payload: dict[str, Any], *args: str, terminal: bool = False
) -> asyncio.subprocess.Process:
    """The gate as ``claude -p`` runs it, or (``terminal``) as the interactive CLI does."""
    return await start_gate(redis_url, payload, *args, entrypoint="cli" if terminal else "sdk-cli")


@pytest.mark.slow
async def test_approve_allows_the_input_people_saw(redis_server, start_worker, slack):
    worker = await start_worker()
    process = await ask(redis_server.url, permission_request())
    message = await posted(slack)
    await worker.click("U_ALICE", Action.APPROVE, message, name="alice")
    answer = decision(await finish(process))
    assert answer == {"behavior": "allow", "updatedInput": COMMAND}


@pytest.mark.slow
async def test_deny_and_deny_and_stop(redis_server, start_worker, slack):
    worker = await start_worker()
    first = await ask(redis_server.url, permission_request(prompt="p-deny"))
    await worker.deny("U_BOB", await posted(slack), "Not on Fridays.", name="bob")
    denied = decision(await finish(first))
    assert denied["behavior"] == "deny" and "interrupt" not in denied
    assert "Denied in Slack by @bob (U_BOB)" in denied["message"] and "Not on Fridays." in denied["message"]

    second = await ask(redis_server.url, permission_request(prompt="p-stop"))
    await worker.deny("U_BOB", await posted(slack, count=2), "Wrong cluster.", name="bob", stop=True)
    stopped = decision(await finish(second))
    assert stopped["behavior"] == "deny" and stopped["interrupt"] is True
    assert "Wrong cluster." in stopped["message"]


@pytest.mark.slow
async def test_always_allow_grants_the_suggested_rule_for_the_session_only(redis_server, start_worker, slack):
    worker = await start_worker()
    process = await ask(redis_server.url, permission_request())
    message = await posted(slack)
    assert "make build *" in json.dumps(message.blocks)  # the message lists what would be granted
    await worker.click("U_ALICE", Action.ALWAYS_ALLOW, message, name="alice")
    answer = decision(await finish(process))
    assert answer["updatedPermissions"] == [
        {
            "type": "addRules",
            "rules": [{"toolName": "Bash", "ruleContent": "make build *"}],
            "behavior": "allow",
            "destination": "session",  # never the suggested localSettings
        }
    ]


@pytest.mark.slow
async def test_a_subagents_call_names_the_subagent(redis_server, start_worker, slack):
    await start_worker()
    process = await ask(
        redis_server.url,
        permission_request(agent_id="aed344b11973d8f2a", agent_type="general-purpose"),
        "--agent-name",
        "laptop",
    )
    message = await posted(slack)
    assert "laptop (subagent general-purpose aed344b11973d8f2a)" in json.dumps(message.blocks)
    process.kill()
    await process.wait()


@pytest.mark.slow
async def test_two_identical_calls_in_one_prompt_each_need_their_own_approval(
    redis_server, start_worker, slack
):
    worker = await start_worker()
    first = await ask(redis_server.url, permission_request())
    await worker.click("U_ALICE", Action.APPROVE, await posted(slack), name="alice")
    assert decision(await finish(first))["behavior"] == "allow"
    # Claude Code asks about the next identical call of the turn: same session, prompt and input.
    second = await ask(redis_server.url, permission_request(), "--wait", "0.5")
    answer = decision(await finish(second))
    assert answer["behavior"] == "deny" and answer["message"].startswith("Not run yet: still waiting")
    assert len(slack.roots()) == 2  # asked anew, not handed the first call's approval


@pytest.mark.slow
async def test_in_claude_p_the_same_call_asked_again_after_the_hook_was_stopped_finds_the_same_request(
    redis_server, start_worker, slack, store
):
    worker = await start_worker()
    process = await ask(redis_server.url, permission_request(prompt="p-again"))
    await posted(slack)
    process.send_signal(signal.SIGTERM)  # Claude Code's timeout, or Esc
    stopped = await finish(process)
    assert stopped.code == 0 and decision(stopped)["behavior"] == "deny"

    again = await ask(redis_server.url, permission_request(prompt="p-again"))
    await worker.click("U_ALICE", Action.APPROVE, await posted(slack), name="alice")
    assert decision(await finish(again))["behavior"] == "allow"
    assert len(slack.roots()) == 1


@pytest.mark.slow
async def test_every_failure_is_a_deny_the_model_reads():
    run = await finish(await ask("redis://127.0.0.1:9/0", permission_request()))
    answer = decision(run)
    assert answer["behavior"] == "deny"
    assert "could not be reached" in answer["message"] and "The tool was not run" in answer["message"]


@pytest.mark.slow
async def test_a_malformed_permission_request_is_denied(redis_server, redis):
    run = await finish(await ask(redis_server.url, {**permission_request(), "tool_input": "rm -rf /"}))
    answer = decision(run)
    assert answer["behavior"] == "deny" and "tool_input" in answer["message"]
    assert await redis.dbsize() == 0


@pytest.mark.slow
async def test_a_second_approver_in_the_same_claude_code_is_refused(redis_server, redis):
    # The Agent SDK's can_use_tool runs the CLI with --permission-prompt-tool stdio: both would
    # be asked, and the first answer would win. The hook's parent process stands in for the CLI.
    parent = (
        "import subprocess, sys; "
        "sys.exit(subprocess.run([sys.executable, '-m', 'bot', 'gate'], stdin=sys.stdin).returncode)"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        parent,
        "--permission-prompt-tool",
        "stdio",
        env={"REDIS_URL": redis_server.url, "PATH": "/usr/bin:/bin"},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(json.dumps(permission_request()).encode()), 30)
    answer = decision(HookRun(process.returncode or 0, out.decode(), err.decode()))
    assert answer["behavior"] == "deny" and "can_use_tool" in answer["message"]
    assert await redis.dbsize() == 0  # nothing was asked


@pytest.mark.slow
async def test_a_terminal_no_ends_the_request_in_slack(redis_server, start_worker, slack, store):
    # In a terminal Claude Code shows its own prompt while the hook waits; an answer there
    # (No, Esc) stops the hook with SIGTERM.
    await start_worker()
    process = await ask(redis_server.url, permission_request(prompt="p-term"), terminal=True)
    message = await posted(slack)
    process.send_signal(signal.SIGTERM)
    await finish(process)
    await slack.wait_for(
        lambda: "Answered in the terminal" in json.dumps(slack.message(message.channel, message.ts).blocks)
    )
    shown = slack.message(message.channel, message.ts)
    assert Action.APPROVE.value not in json.dumps(shown.blocks)  # nothing left to click
    request = await store.get(asked_request_id(permission_request(prompt="p-term")))
    assert request.state is State.CANCELLED and request.decided_by == "terminal"


@pytest.mark.slow
async def test_a_terminal_yes_ends_the_request_in_slack_and_the_hook(redis_server, start_worker, slack):
    # A Yes in the terminal does not stop the hook: the call runs, and its PostToolUse hook says so.
    await start_worker()
    waiting = await ask(redis_server.url, permission_request(prompt="p-yes"), terminal=True)
    message = await posted(slack)
    ran = {
        **permission_request(prompt="p-yes"),
        "hook_event_name": "PostToolUse",
        "tool_use_id": "toolu_ran",
        "tool_response": {"stdout": "", "stderr": "", "interrupted": False},
    }
    after = await finish(await ask(redis_server.url, ran, terminal=True))
    assert after.code == 0 and json.loads(after.stdout) == {}
    woken = await finish(waiting)  # at once: nothing left to wait for
    assert woken.code == 0 and json.loads(woken.stdout) == {}  # no answer: the terminal's stands
    await slack.wait_for(
        lambda: "Answered in the terminal" in json.dumps(slack.message(message.channel, message.ts).blocks)
    )


@pytest.mark.slow
async def test_a_call_the_hook_allowed_is_not_taken_for_a_terminal_answer(redis_server, start_worker, slack):
    worker = await start_worker()
    process = await ask(redis_server.url, permission_request(prompt="p-slack"), terminal=True)
    message = await posted(slack)
    await worker.click("U_ALICE", Action.APPROVE, message, name="alice")
    assert decision(await finish(process))["behavior"] == "allow"
    ran = {
        **permission_request(prompt="p-slack"),
        "hook_event_name": "PostToolUse",
        "tool_use_id": "toolu_ran",
    }
    await finish(await ask(redis_server.url, ran, terminal=True))
    shown = json.dumps(slack.message(message.channel, message.ts).blocks)
    assert "Approved by <@U_ALICE>" in shown and "terminal" not in shown


@pytest.mark.slow
async def test_the_run_of_one_identical_copy_never_ends_anothers_request(
    redis_server, start_worker, slack, store
):
    # Two identical calls asked at once (Claude Code does so for calls it reads as read-only):
    # Slack approves the second; its run must not be taken for a terminal answer to the first.
    worker = await start_worker()
    first = await ask(redis_server.url, permission_request(prompt="p-two"), terminal=True)
    await posted(slack)
    second = await ask(redis_server.url, permission_request(prompt="p-two"), terminal=True)
    await worker.click("U_ALICE", Action.APPROVE, await posted(slack, count=2), name="alice")
    assert decision(await finish(second))["behavior"] == "allow"
    ran = {
        **permission_request(prompt="p-two"),
        "hook_event_name": "PostToolUse",
        "tool_use_id": "toolu_second",
    }
    await finish(await ask(redis_server.url, ran, terminal=True))
    waiting = await store.get(asked_request_id(permission_request(prompt="p-two"), 0))
    assert waiting.state is State.PENDING  # still Slack's (or the terminal's) to answer
    # The first copy runs too, after a Yes at the terminal: now that one was answered there.
    await finish(await ask(redis_server.url, {**ran, "tool_use_id": "toolu_first"}, terminal=True))
    assert (await store.get(waiting.id)).decided_by == "terminal"
    await finish(first)


@pytest.mark.slow
async def test_in_claude_p_a_call_that_ran_ends_no_request(redis_server, start_worker, slack, store):
    await start_worker()
    waiting = await ask(redis_server.url, permission_request(prompt="p-headless"))
    await posted(slack)
    ran = {
        **permission_request(prompt="p-headless"),
        "hook_event_name": "PostToolUse",
        "tool_use_id": "toolu_x",
    }
    await finish(await ask(redis_server.url, ran))
    assert (await store.get(asked_request_id(permission_request(prompt="p-headless")))).state is State.PENDING
    waiting.kill()
    await waiting.wait()


@pytest.mark.slow
async def test_in_a_terminal_slacks_wait_running_out_leaves_the_call_to_claude_codes_prompt(
    redis_server, start_worker, slack
):
    await start_worker()
    run = await finish(
        await ask(redis_server.url, permission_request(prompt="p-left"), "--wait", "0.5", terminal=True)
    )
    assert run.code == 0 and json.loads(run.stdout) == {}  # no decision: the terminal's prompt decides
    message = await posted(slack)
    await slack.wait_for(
        lambda: "Left to the terminal" in json.dumps(slack.message(message.channel, message.ts).blocks)
    )


def test_slack_approver_refuses_settings_that_would_stack_a_permission_request_hook(tmp_path):
    from bot import SlackApprover

    approver = SlackApprover("redis://127.0.0.1:9/0")
    hook = {
        "hooks": {"PermissionRequest": [{"matcher": "*", "hooks": [{"type": "command", "command": "x"}]}]}
    }
    with pytest.raises(ValueError, match="first"):
        approver.options(settings=json.dumps(hook))
    project = tmp_path / "project"
    (project / ".claude").mkdir(parents=True)
    (project / ".claude" / "settings.json").write_text(json.dumps(hook))
    with pytest.raises(ValueError, match=r"\.claude/settings\.json"):
        approver.options(cwd=project, setting_sources=["project"])
    assert (
        approver.options(cwd=project, setting_sources=[]).can_use_tool is not None
    )  # that file is not loaded


@pytest.mark.slow
async def test_a_permission_request_hook_beside_can_use_tool_denies_instead_of_racing(
    tmp_path, monkeypatch, start_worker, make_approver, slack
):
    # Built by hand, around options(): the hook notices Claude Code's --permission-prompt-tool.
    from claude_agent_sdk import ClaudeAgentOptions, ResultMessage, query

    from bot.demo.scripted_model import ScriptedModel, text, tool_use
    from tests.fakes.agent_env import clean_agent_env
    from tests.fakes.claude_cli import gate_hook

    clean_agent_env(monkeypatch)
    await start_worker()
    approver = await make_approver()
    workdir = tmp_path / "work"
    workdir.mkdir()
    async with ScriptedModel.start(
        [tool_use("Bash", {"command": "echo ran >> marker.txt"}), text("done")]
    ) as model:
        env = {**model.cli_env(config_dir=tmp_path / "cfg"), "REDIS_URL": approver.redis_url or ""}
        options = ClaudeAgentOptions(
            cwd=workdir,
            setting_sources=[],
            tools=["Bash"],
            env=env,
            permission_mode="default",
            can_use_tool=approver.can_use_tool,
            settings=json.dumps(gate_hook("PermissionRequest")),
        )
        _ = [m async for m in query(prompt="go", options=options) if isinstance(m, ResultMessage)]
    assert not (workdir / "marker.txt").exists()
    [result] = model.tool_results()
    assert result.is_error and "asks two approvers" in result.content


async def test_the_racing_approver_check_reads_the_process_it_starts_from():
    # The first process looked at is read too (in a container, Claude Code itself may be pid 1).
    from bot.agent.other_approver import prompt_tool

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; sys.stdin.read()",
        "--permission-prompt-tool",
        "mcp__approvals__approve",
        stdin=asyncio.subprocess.PIPE,
    )
    try:
        assert prompt_tool(process.pid) == "mcp__approvals__approve"
        assert prompt_tool(os.getpid()) is None
    finally:
        process.stdin.close()
        await asyncio.wait_for(process.wait(), 10)


async def test_a_request_the_terminal_took_over_is_a_deny_outside_a_terminal(
    redis_server, start_worker, slack
):
    # The same call asked again by a headless run of the session: no terminal prompt there to defer to.
    await start_worker()
    process = await ask(redis_server.url, permission_request(prompt="p-took"), terminal=True)
    await posted(slack)
    process.send_signal(signal.SIGTERM)
    await finish(process)
    again = decision(
        await finish(await ask(redis_server.url, permission_request(prompt="p-took"), "--wait", "2"))
    )
    assert again["behavior"] == "deny"


async def test_nothing_is_left_to_claude_code_when_it_asks_nothing(redis_server, start_worker, slack):
    # Under bypassPermissions Claude Code would run whatever the gate leaves to it.
    from tests.test_gate import hook_input

    await start_worker()
    call = {**hook_input("toolu_bypass", {"command": "ls"}), "permission_mode": "bypassPermissions"}
    run = await finish(
        await start_gate(redis_server.url, call, "--allow-read-only", "--wait", "0", entrypoint="sdk-py")
    )
    assert json.loads(run.stdout)["hookSpecificOutput"]["permissionDecision"] == "ask"
    await posted(slack)
