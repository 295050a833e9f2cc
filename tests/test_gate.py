"""``python -m bot gate`` as Claude Code runs it: a process, hook JSON on stdin,
decision JSON on stdout, exit 2 whenever it cannot give a clear answer."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot import SlackApprover
from bot.approvals.model import State, request_id_for
from bot.slack.ids import Action
from tests.conftest import policy_file, posted
from tests.fakes.bot_settings import CHANNEL

COMMAND = {"command": "terraform apply", "description": "Apply the plan"}


@dataclass
class HookRun:
    code: int
    stdout: str
    stderr: str

    @property
    def decision(self) -> dict[str, Any]:
        assert self.code == 0, self.stderr
        output = json.loads(self.stdout)["hookSpecificOutput"]
        assert output["hookEventName"] == "PreToolUse"
        return output


def hook_input(
    tool_use_id: str,
    tool_input: dict[str, Any] | None = None,
    *,
    session: str = "sess-1",
    transcript: Path | None = None,
) -> dict[str, Any]:
    """What Claude Code writes to a PreToolUse hook's stdin."""
    return {
        "session_id": session,
        "transcript_path": str(transcript or f"/nonexistent/{session}.jsonl"),
        "cwd": "/tmp",
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": tool_input or COMMAND,
        "tool_use_id": tool_use_id,
    }


def transcript(directory: Path, *tool_use_ids: str) -> Path:
    """A session transcript whose last model message made these calls (one entry per block, as the CLI writes it)."""
    path = directory / "session.jsonl"
    with path.open("w") as out:
        out.write(json.dumps({"type": "user", "message": {"role": "user", "content": "deploy it"}}) + "\n")
        out.write("{not json\n")  # a torn line must not matter
        for tool_use_id in tool_use_ids:
            block = {"type": "tool_use", "id": tool_use_id, "name": "Bash", "input": COMMAND}
            message = {"id": "msg_01", "role": "assistant", "content": [block]}
            out.write(json.dumps({"type": "assistant", "message": message}) + "\n")
    return path


async def start_gate(
    redis_url: str, payload: dict[str, Any] | bytes, *args: str, entrypoint: str = "cli"
) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE", "ANTHROPIC", "REDIS_URL"))}
    env.update(REDIS_URL=redis_url, CLAUDE_CODE_ENTRYPOINT=entrypoint)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "gate",
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    process.stdin.write(payload if isinstance(payload, bytes) else json.dumps(payload).encode())
    process.stdin.close()
    return process


async def finish(process: asyncio.subprocess.Process) -> HookRun:
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return HookRun(process.returncode, out.decode(), err.decode())


async def gate(
    redis_url: str, payload: dict[str, Any] | bytes, *args: str, entrypoint: str = "cli"
) -> HookRun:
    return await finish(await start_gate(redis_url, payload, *args, entrypoint=entrypoint))


@pytest.mark.slow
async def test_claude_code_waits_in_the_hook_and_runs_what_slack_approved(redis_server, start_worker, slack):
    worker = await start_worker()
    process = await start_gate(redis_server.url, hook_input("toolu_cc_1"), "--agent-name", "laptop")
    message = await posted(slack)
    assert "terraform apply" in str(message.blocks)
    await worker.click("U_ALICE", Action.APPROVE, message, name="alice")
    run = await finish(process)
    assert run.decision["permissionDecision"] == "allow"
    assert run.decision["updatedInput"] == COMMAND
    assert run.decision["permissionDecisionReason"] == "Approved in Slack by @alice."


@pytest.mark.slow
async def test_a_denial_blocks_with_the_reason(redis_server, start_worker, slack):
    worker = await start_worker()
    process = await start_gate(redis_server.url, hook_input("toolu_cc_deny"))
    await worker.deny("U_BOB", await posted(slack), "Plan first.", name="bob")
    run = await finish(process)
    assert run.decision["permissionDecision"] == "deny"
    assert "Denied in Slack by @bob (U_BOB)" in run.decision["permissionDecisionReason"]
    assert "Reason: Plan first." in run.decision["permissionDecisionReason"]


@pytest.mark.slow
async def test_interactive_gives_up_waiting_then_the_same_call_picks_up_the_decision(
    redis_server, start_worker, slack, store
):
    worker = await start_worker()
    first = await gate(redis_server.url, hook_input("toolu_cc_a"), "--wait", "0.5")
    assert first.decision["permissionDecision"] == "deny"
    assert first.decision["permissionDecisionReason"].startswith(
        f"Not run yet: still waiting for approval in Slack channel {CHANNEL}"
    )
    request = await store.get(request_id_for("toolu_cc_a"))
    assert request is not None and request.state is State.PENDING  # still open in Slack

    await worker.click("U_ALICE", Action.APPROVE, await posted(slack), name="alice")
    # The model tries again: a new tool_use_id, same session, same input.
    second = await gate(redis_server.url, hook_input("toolu_cc_b"), "--wait", "0.5")
    assert second.decision["permissionDecision"] == "allow"
    assert len(slack.roots()) == 1

    # That approval was used once: the next identical call asks anew.
    third = await gate(redis_server.url, hook_input("toolu_cc_c"), "--wait", "0.5")
    assert third.decision["permissionDecision"] == "deny"
    await posted(slack, count=2)
    # Another session does not pick up this session's requests.
    other = await gate(redis_server.url, hook_input("toolu_cc_d", session="sess-2"), "--wait", "0.5")
    assert other.decision["permissionDecision"] == "deny"
    await posted(slack, count=3)


@pytest.mark.slow
async def test_headless_claude_code_defers_when_the_wait_runs_out(
    redis_server, start_worker, slack, store, tmp_path
):
    await start_worker()
    call = hook_input("toolu_headless", transcript=transcript(tmp_path, "toolu_headless"))
    run = await gate(redis_server.url, call, "--wait", "0.3", entrypoint="sdk-cli")
    assert run.decision["permissionDecision"] == "defer"
    assert (await store.get(request_id_for("toolu_headless"))).state is State.PENDING


@pytest.mark.slow
async def test_one_call_of_several_is_never_deferred(redis_server, start_worker, slack, tmp_path):
    # The CLI would drop the other calls of the turn: say no, the request stays open.
    await start_worker()
    call = hook_input("toolu_p1", transcript=transcript(tmp_path, "toolu_p1", "toolu_p2"))
    headless = await gate(redis_server.url, call, "--wait", "0.3", entrypoint="sdk-cli")
    assert headless.decision["permissionDecision"] == "deny"
    assert "still waiting for approval" in headless.decision["permissionDecisionReason"]
    sdk = await gate(
        redis_server.url,
        {**call, "tool_use_id": "toolu_p2"},
        "--mode",
        "defer",
        "--wait",
        "0",
        entrypoint="sdk-py",
    )
    assert sdk.decision["permissionDecision"] == "ask"  # can_use_tool waits instead


@pytest.mark.slow
async def test_sdk_wait_mode_hands_the_call_to_can_use_tool(redis_server, start_worker, slack):
    await start_worker()
    run = await gate(redis_server.url, hook_input("toolu_sdk"), "--wait", "0", entrypoint="sdk-py")
    assert run.decision["permissionDecision"] == "ask"
    await posted(slack)


@pytest.mark.slow
async def test_a_policy_deny_answers_at_once_without_a_post(redis_server, start_worker, slack, tmp_path):
    policy = policy_file(
        tmp_path,
        """
rules:
  - tool: Bash
    command: "^terraform apply"
    action: deny
    message: Use the pipeline.
""",
    )
    await start_worker(approval_policy=policy)
    run = await gate(redis_server.url, hook_input("toolu_policy"), "--mode", "defer", entrypoint="sdk-py")
    assert run.decision["permissionDecision"] == "deny"
    assert "Use the pipeline." in run.decision["permissionDecisionReason"]
    assert slack.roots() == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "payload, problem",
    [
        (b"not json", "invalid hook input"),
        (b'\xff\xfe{"hook_event_name"', "hook input"),  # not UTF-8
        (
            {
                "hook_event_name": "UserPromptSubmit",
                "tool_name": "Bash",
                "tool_input": {},
                "tool_use_id": "t",
            },
            "hook_event_name",
        ),
        ({**hook_input("toolu_x"), "tool_input": "rm -rf /"}, "tool_input"),
        ({**hook_input("toolu_x"), "tool_use_id": ""}, "tool_use_id"),
    ],
)
async def test_malformed_hook_input_blocks_and_stores_nothing(redis_server, redis, payload, problem):
    run = await gate(redis_server.url, payload)
    assert run.code == 2 and run.stdout == ""
    assert problem in run.stderr
    assert await redis.dbsize() == 0


async def test_a_gate_that_cannot_even_import_still_blocks(tmp_path):
    # A broken install: the redis package fails to import in the hook's Python.
    (tmp_path / "redis").mkdir()
    (tmp_path / "redis" / "__init__.py").write_text("raise ImportError('broken install')\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "gate",
        cwd=tmp_path,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(
        process.communicate(json.dumps(hook_input("toolu_broken")).encode()), 30
    )
    assert process.returncode == 2 and out == b""
    assert "could not start" in err.decode() and "broken install" in err.decode()


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, problem",
    [
        (
            ["--wait", "600"],
            "--wait 600 does not fit below its hook's 600-second timeout",
        ),  # the default hook timeout
        (["--wait", "593", "--hook-timeout", "600"], "--wait 593 does not fit"),  # no room for the route wait
        (["--wait", "30", "--hook-timeout", "8"], "--wait 30 does not fit below its hook's 8-second timeout"),
        (["--wait", "inf"], "--wait must be a finite number of seconds"),
        (["--wait", "nan"], "--wait must be a finite number of seconds"),
        (["--hook-timeout", "7"], "needs a hook timeout of at least 8 seconds"),
        (["--hook-timeout", "0"], "needs a hook timeout of at least"),
        (["--hook-timeout", "-600"], "needs a hook timeout of at least"),
        (["--hook-timeout", "inf"], "--hook-timeout must be a finite number of seconds"),
        (["--hook-timeout", "nan"], "--hook-timeout must be a finite number of seconds"),
    ],
)
async def test_a_wait_that_cannot_answer_before_the_hook_times_out_is_refused(
    redis_server, redis, args, problem
):
    # A hook that outlives its timeout gives no decision and the CLI's own
    # rules run the call: refuse at once, with exit 2 (exit 1 would run it).
    run = await gate(redis_server.url, hook_input("toolu_refused"), *args)
    assert run.code == 2 and run.stdout == ""
    assert run.stderr.startswith("Blocked: the approval gate")
    assert problem in run.stderr and "The tool was not run." in run.stderr
    assert await redis.dbsize() == 0  # nothing was asked


@pytest.mark.slow
async def test_the_default_wait_shrinks_to_fit_a_short_hook_timeout(redis_server, start_worker, slack):
    # 9 s of hook: 3 s of margin and 5 s for the team rules leave 1 s to wait, not the default 540.
    await start_worker()
    run = await gate(redis_server.url, hook_input("toolu_short_hook"), "--hook-timeout", "9")
    assert run.decision["permissionDecision"] == "deny"
    assert run.decision["permissionDecisionReason"].startswith("Not run yet: still waiting for approval")


def _hook_timeouts(settings: dict[str, Any]) -> list[tuple[float, float]]:
    """(the hook's ``timeout``, the ``--hook-timeout`` its command passes) for each gate hook, of any event."""
    found = []
    for entries in settings["hooks"].values():
        for entry in entries:
            for hook in entry["hooks"]:
                argv = shlex.split(hook["command"])
                found.append((float(hook["timeout"]), float(argv[argv.index("--hook-timeout") + 1])))
    return found


def test_the_installed_hook_tells_the_gate_its_own_timeout():
    approver = SlackApprover("redis://127.0.0.1:9/0", mode="defer")
    [(timeout, told)] = _hook_timeouts(json.loads(approver.settings()))
    assert told == timeout


def test_the_readme_settings_json_tells_the_gate_its_timeout():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    examples = [block for block in re.findall(r"```json\n(.*?)```", readme, re.DOTALL) if "bot gate" in block]
    hooks = [pair for example in examples for pair in _hook_timeouts(json.loads(example))]
    assert len(examples) == 2 and len(hooks) == 3  # install's two hooks, and the PreToolUse gate by hand
    assert all(told == timeout for timeout, told in hooks)


@pytest.mark.slow
async def test_redis_unreachable_blocks_the_call():
    run = await gate("redis://127.0.0.1:9/0", hook_input("toolu_noredis"))
    assert run.code == 2
    assert "could not be reached" in run.stderr and "The tool was not run" in run.stderr


@pytest.mark.slow
async def test_stopped_by_claude_code_while_waiting_blocks(redis_server, start_worker, slack, store):
    await start_worker()
    process = await start_gate(redis_server.url, hook_input("toolu_sigterm"))
    await posted(slack)
    process.send_signal(signal.SIGTERM)  # the hook timed out, or the user pressed Esc
    run = await finish(process)
    assert run.code == 2 and run.stdout == ""
    assert "stopped before anyone decided" in run.stderr
    assert (await store.get(request_id_for("toolu_sigterm"))).state is State.PENDING


@pytest.mark.slow
async def test_headless_claude_code_defers_then_resumes_with_the_decision(
    redis_server, start_worker, slack, tmp_path, monkeypatch
):
    """``claude -p`` with the gate in settings.json, then ``claude -p --resume`` (the README's recipe)."""
    import claude_agent_sdk

    from bot.demo.scripted_model import ScriptedModel, text, tool_use
    from tests.fakes.agent_env import clean_agent_env

    clean_agent_env(monkeypatch)
    cli = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    worker = await start_worker()
    workdir = tmp_path / "work"
    workdir.mkdir()
    hook = {
        "type": "command",
        "command": f"{sys.executable} -m bot gate --wait 0.5 --agent-name ci",
        "timeout": 600,
    }
    settings = json.dumps({"hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [hook]}]}})
    marker = {"command": "echo ran >> marker.txt", "description": "Append to a marker file"}
    async with ScriptedModel.start([tool_use("Bash", marker), text("done")]) as model:
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env.update(model.cli_env(config_dir=tmp_path / "cfg"), REDIS_URL=redis_server.url)

        async def claude(*args: str) -> dict[str, Any]:
            process = await asyncio.create_subprocess_exec(
                str(cli),
                "-p",
                *args,
                "--settings",
                settings,
                "--tools",
                "Bash",
                "--output-format",
                "json",
                cwd=workdir,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(process.communicate(), 60)
            assert process.returncode == 0, err.decode()
            return json.loads(out)

        first = await claude("do the task")
        assert first["stop_reason"] == "tool_deferred"
        assert not (workdir / "marker.txt").exists()
        await worker.click("U_ALICE", Action.APPROVE, await posted(slack), name="alice")
        resumed = await claude("--resume", first["session_id"])

    assert resumed["result"] == "done"
    assert (workdir / "marker.txt").read_text() == "ran\n"
    assert len(slack.roots()) == 1
