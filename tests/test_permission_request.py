"""``python -m bot gate`` answering Claude Code's ``PermissionRequest`` hook, as a process:
hook JSON on stdin (no ``tool_use_id``), a ``decision`` on stdout."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any

from bot.approvals.model import State
from bot.slack.ids import Action
from tests.conftest import posted
from tests.test_gate import HookRun, finish, start_gate

COMMAND = {"command": "make build", "description": "Build it"}
SUGGESTED = [
    {"type": "addRules", "rules": [{"toolName": "Bash", "ruleContent": "make build *"}], "behavior": "allow",
     "destination": "localSettings"},
    {"type": "setMode", "mode": "acceptEdits", "destination": "session"},
]


def permission_request(
    tool_input: dict[str, Any] | None = None, *, session: str = "sess-pr", prompt: str = "prompt-1", **extra: Any
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


def decision(run: HookRun) -> dict[str, Any]:
    assert run.code == 0, run.stderr
    output = json.loads(run.stdout)["hookSpecificOutput"]
    assert output["hookEventName"] == "PermissionRequest"
    return output["decision"]


async def ask(redis_url: str, payload: dict[str, Any], *args: str) -> asyncio.subprocess.Process:
    return await start_gate(redis_url, payload, *args)


async def test_approve_allows_the_input_people_saw(redis_server, start_worker, slack):
    worker = await start_worker()
    process = await ask(redis_server.url, permission_request())
    message = await posted(slack)
    await worker.click("U_ALICE", Action.APPROVE, message, name="alice")
    answer = decision(await finish(process))
    assert answer == {"behavior": "allow", "updatedInput": COMMAND}


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


async def test_always_allow_grants_the_suggested_rule_for_the_session_only(redis_server, start_worker, slack):
    worker = await start_worker()
    process = await ask(redis_server.url, permission_request())
    message = await posted(slack)
    assert "make build *" in json.dumps(message.blocks)  # the message lists what would be granted
    await worker.click("U_ALICE", Action.ALWAYS_ALLOW, message, name="alice")
    answer = decision(await finish(process))
    assert answer["updatedPermissions"] == [{
        "type": "addRules", "rules": [{"toolName": "Bash", "ruleContent": "make build *"}],
        "behavior": "allow", "destination": "session",  # never the suggested localSettings
    }]


async def test_a_subagents_call_names_the_subagent(redis_server, start_worker, slack):
    await start_worker()
    process = await ask(
        redis_server.url, permission_request(agent_id="aed344b11973d8f2a", agent_type="general-purpose"),
        "--agent-name", "laptop",
    )
    message = await posted(slack)
    assert "laptop (subagent general-purpose aed344b11973d8f2a)" in json.dumps(message.blocks)
    process.kill()
    await process.wait()


async def test_two_identical_calls_in_one_prompt_each_need_their_own_approval(redis_server, start_worker, slack):
    worker = await start_worker()
    first = await ask(redis_server.url, permission_request())
    await worker.click("U_ALICE", Action.APPROVE, await posted(slack), name="alice")
    assert decision(await finish(first))["behavior"] == "allow"
    # Claude Code asks about the next identical call of the turn: same session, prompt and input.
    second = await ask(redis_server.url, permission_request(), "--wait", "0.5")
    answer = decision(await finish(second))
    assert answer["behavior"] == "deny" and answer["message"].startswith("Not run yet: still waiting")
    assert len(slack.roots()) == 2  # asked anew, not handed the first call's approval


async def test_the_same_call_asked_again_after_the_hook_was_stopped_finds_the_same_request(
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


async def test_every_failure_is_a_deny_the_model_reads():
    run = await finish(await ask("redis://127.0.0.1:9/0", permission_request()))
    answer = decision(run)
    assert answer["behavior"] == "deny"
    assert "could not be reached" in answer["message"] and "The tool was not run" in answer["message"]


async def test_a_malformed_permission_request_is_denied(redis_server, redis):
    run = await finish(await ask(redis_server.url, {**permission_request(), "tool_input": "rm -rf /"}))
    answer = decision(run)
    assert answer["behavior"] == "deny" and "tool_input" in answer["message"]
    assert await redis.dbsize() == 0


async def test_a_second_approver_in_the_same_claude_code_is_refused(redis_server, redis):
    # The Agent SDK's can_use_tool runs the CLI with --permission-prompt-tool stdio: both would
    # be asked, and the first answer would win. The hook's parent process stands in for the CLI.
    parent = (
        "import subprocess, sys; "
        "sys.exit(subprocess.run([sys.executable, '-m', 'bot', 'gate'], stdin=sys.stdin).returncode)"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", parent, "--permission-prompt-tool", "stdio",
        env={"REDIS_URL": redis_server.url, "PATH": "/usr/bin:/bin"},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(json.dumps(permission_request()).encode()), 30)
    answer = decision(HookRun(process.returncode or 0, out.decode(), err.decode()))
    assert answer["behavior"] == "deny" and "can_use_tool" in answer["message"]
    assert await redis.dbsize() == 0  # nothing was asked
