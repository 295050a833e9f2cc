"""The gate asks Slack only about what ``can_use_tool`` alone would be asked
(issue 16, item 6): calls the run's allow rules match and simple read-only
Bash commands are left to Claude Code, which still prompts, through
``can_use_tool`` and Slack, for anything its own rules do not allow.

The real SDK and bundled CLI against the scripted model, a real worker and the fake Slack."""

from __future__ import annotations

import asyncio
import json
import shlex
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk import ClaudeAgentOptions, PermissionResultDeny, ResultMessage, query

from bot import SlackApprover
from bot.agent.passthrough import READ_ONLY_EXAMPLES, PassThrough, read_only
from bot.approvals.store import RequestStore
from bot.bench.gate_noise import ALLOWED_TOOLS, SETTINGS, TOOLS, label, prepare, script, session
from bot.demo.scripted_model import ScriptedModel, text, tool_use
from bot.slack.ids import Action
from tests.fakes.agent_env import clean_agent_env
from tests.test_gate import gate, hook_input

RUN_TIMEOUT = 120


@pytest.fixture(autouse=True)
def _agent_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_agent_env(monkeypatch)


def request_of(message) -> str:
    """The request id a request message carries in its metadata."""
    return message.metadata["event_payload"]["request_id"]


@asynccontextmanager
async def team(worker, slack, store: RequestStore, *, approve: bool = True) -> AsyncIterator[list[str]]:
    """Clicks Approve (or Deny) on every request message as it is posted; yields the calls posted, in order."""
    asked: list[str] = []
    before = len(slack.roots())  # earlier runs' messages

    async def click_each() -> None:
        while True:
            await slack.wait_for(lambda: len(slack.roots()) > before + len(asked), timeout=RUN_TIMEOUT)
            message = slack.roots()[before + len(asked)]
            request = await store.get(request_of(message))
            asked.append(label(request.tool_name, request.tool_input))
            await worker.click("U_ALICE", Action.APPROVE if approve else Action.DENY, message, name="alice")

    task = asyncio.create_task(click_each())
    try:
        yield asked
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def run(options: ClaudeAgentOptions, prompt: str = "tidy up and run the tests") -> ResultMessage:
    async with asyncio.timeout(RUN_TIMEOUT):
        [result] = [m async for m in query(prompt=prompt, options=options) if isinstance(m, ResultMessage)]
    return result


def seeing(approver: SlackApprover, seen: list[str]) -> SlackApprover:
    """Note each call ``can_use_tool`` is asked about, then ask Slack as usual."""
    asking = approver.can_use_tool

    async def can_use_tool(tool_name, tool_input, context):
        seen.append(label(tool_name, tool_input))
        return await asking(tool_name, tool_input, context)

    approver.can_use_tool = can_use_tool  # type: ignore[method-assign]
    return approver


def run_kwargs(workdir: Path, model: ScriptedModel, config: Path, **kwargs: Any) -> dict[str, Any]:
    return {
        "cwd": workdir,
        "setting_sources": [],
        "tools": TOOLS,
        "env": model.cli_env(config_dir=config),
        "permission_mode": "default",
    } | kwargs


ASKED_ALONE = ["Bash: echo x > out.txt", "Bash: rm out.txt", "Write: notes.md", "Edit: app.py"]


@pytest.mark.slow
async def test_the_gate_asks_slack_only_what_can_use_tool_alone_is_asked(
    tmp_path, start_worker, make_approver, slack, store
):
    worker = await start_worker()
    # Without the gate: the calls Claude Code itself prompts for.
    alone: list[str] = []
    approver = seeing(await make_approver(), alone)
    first = tmp_path / "alone"
    prepare(first)
    async with ScriptedModel.start(script(first)) as model, team(worker, slack, store) as asked_alone:
        kwargs = run_kwargs(
            first, model, tmp_path / "cfg1", allowed_tools=ALLOWED_TOOLS, settings=json.dumps(SETTINGS)
        )
        await run(ClaudeAgentOptions(**kwargs, can_use_tool=approver.can_use_tool))
    assert alone == asked_alone == ASKED_ALONE

    # With the gate (approver.options): the same calls, and only those, reach Slack; all of them ran.
    second = tmp_path / "gated"
    prepare(second)
    gated = await make_approver()
    async with ScriptedModel.start(script(second)) as model, team(worker, slack, store) as asked_gated:
        kwargs = run_kwargs(
            second, model, tmp_path / "cfg2", allowed_tools=ALLOWED_TOOLS, settings=json.dumps(SETTINGS)
        )
        result = await run(gated.options(**kwargs))
        results = model.tool_results()
    assert result.result == "done"
    assert asked_gated == ASKED_ALONE
    assert len(session(second)) == len(results) and not any(r.is_error for r in results)
    assert (second / "notes.md").read_text() == "notes\n" and (second / "app.py").read_text() == "x = 2\n"
    assert results[-2].content.endswith("npm tests passed") and results[-1].content == "make tests passed"


@pytest.mark.slow
async def test_in_defer_mode_the_run_ends_at_the_first_call_claude_code_would_ask_about(
    tmp_path, start_worker, make_approver, slack, store
):
    await start_worker()
    approver = await make_approver(mode="defer")
    workdir = tmp_path / "work"
    prepare(workdir)
    async with ScriptedModel.start(script(workdir)) as model:
        kwargs = run_kwargs(
            workdir, model, tmp_path / "cfg", allowed_tools=ALLOWED_TOOLS, settings=json.dumps(SETTINGS)
        )
        result = await run(approver.options(**kwargs))
        results = model.tool_results()
    assert result.stop_reason == "tool_deferred"
    assert result.deferred_tool_use is not None and result.deferred_tool_use.input == {
        "command": "echo x > out.txt"
    }
    # ls, cat README.md, git status, pwd and grep ran without asking anyone; one message in Slack.
    assert [r.content.splitlines()[0] for r in results][1:4] == ["# demo", "On branch master", str(workdir)]
    assert len(results) == 5 and not any(r.is_error for r in results)
    [message] = slack.roots()
    assert (await store.get(request_of(message))).tool_input == {"command": "echo x > out.txt"}
    assert not (workdir / "out.txt").exists()


@pytest.mark.slow
@pytest.mark.parametrize("approve", [True, False])
async def test_a_call_the_gate_lets_through_but_claude_code_does_not_allow_waits_for_slack(
    tmp_path, start_worker, make_approver, slack, store, approve
):
    """The gate is wrong here on purpose: it was told a rule the CLI was not given."""
    worker = await start_worker()
    approver = await make_approver(mode="defer")
    workdir = tmp_path / "work"
    workdir.mkdir()
    touch = {"command": "touch made.txt"}
    async with ScriptedModel.start([tool_use("Bash", touch), text("done")]) as model:
        kwargs = run_kwargs(workdir, model, tmp_path / "cfg", tools=["Bash"])
        options = replace(
            approver.options(**kwargs), settings=approver.settings(allow=["Bash(touch made.txt)"])
        )
        running = asyncio.create_task(run(options))
        message = await slack_post(slack, running)
        assert "touch made.txt" in str(message.blocks)
        assert (
            not (workdir / "made.txt").exists() and not running.done()
        )  # waiting in can_use_tool, not deferred
        if approve:
            await worker.click("U_ALICE", Action.APPROVE, message, name="alice")
        else:
            await worker.deny("U_BOB", message, "No.", name="bob")
        result = await running
        [told] = model.tool_results()
    assert result.stop_reason == "end_turn"  # never deferred: the gate gave no decision
    assert (workdir / "made.txt").exists() is approve
    assert told.is_error is not approve
    assert len(slack.roots()) == 1


async def slack_post(slack, running: asyncio.Task, count: int = 1):
    """The ``count``-th request message, once posted; fails at once if the run ends first."""
    await slack.wait_for(lambda: len(slack.roots()) >= count or running.done(), timeout=RUN_TIMEOUT)
    if len(slack.roots()) < count:
        raise AssertionError(f"the run ended with {len(slack.roots())} request messages: {running.result()}")
    return slack.roots()[count - 1]


TRICKS = ["npm test; touch hacked.txt", "npm test && touch hacked.txt", "npm test > hacked.txt"]


def test_a_prefix_rule_never_lets_shell_tricks_through():
    through = PassThrough.of(["Bash(npm test:*)"])
    assert through.lets_through("Bash", {"command": "npm test"})
    assert through.lets_through("Bash", {"command": "npm test --ci"})
    for command in [
        *TRICKS,
        "npm test | sh",
        "npm test $(touch x)",
        "npm test `touch x`",
        "npm test\ntouch x",
        "npm tests",
        "FOO=1 npm test",
        "npm test & touch x",
    ]:
        assert not through.lets_through("Bash", {"command": command}), command
    assert not PassThrough.of(["Bash(npm test:*)"], read_only=True).lets_through(
        "Bash", {"command": "touch x"}
    )


@pytest.mark.slow
async def test_shell_tricks_the_gate_was_told_to_let_through_still_wait_for_slack(
    tmp_path, start_worker, make_approver, slack, store
):
    """Even with exact rules for the tricks (which the CLI was not given), Claude Code prompts: Slack decides.

    In defer mode, so a gate that asked instead of letting them through would end the run."""
    worker = await start_worker()
    approver = await make_approver(mode="defer")
    workdir = tmp_path / "work"
    prepare(workdir)
    steps = [tool_use("Bash", {"command": c}) for c in TRICKS]
    async with ScriptedModel.start([*steps, text("done")]) as model:
        kwargs = run_kwargs(
            workdir, model, tmp_path / "cfg", tools=["Bash"], allowed_tools=["Bash(npm test:*)"]
        )
        settings = approver.settings(allow=[f"Bash({c})" for c in TRICKS])
        running = asyncio.create_task(run(replace(approver.options(**kwargs), settings=settings)))
        for count, command in enumerate(TRICKS, 1):
            message = await slack_post(slack, running, count)
            request = await store.get(request_of(message))
            assert request.tool_input["command"] == command
            assert not (workdir / "hacked.txt").exists()
            await worker.deny("U_BOB", message, "No tricks.", name="bob")
        result = await running
        results = model.tool_results()
    assert result.stop_reason == "end_turn"
    assert not (workdir / "hacked.txt").exists()
    assert all(r.is_error and "No tricks." in r.content for r in results)


PROMPTED = [
    "cat /etc/hostname",
    "cat ../x",
    "cat ~/.bashrc",
    "ls /",
    "cat $(echo README.md)",
    "git diff > x",
    "git diff --output=y",
    "git log --output=x",
    "find . -delete",
    "env",
    "cd ..",
    "npm test",
]
"""Bash commands the CLI 2.1.337 prompts for in default mode (a probe of ~50 commands found these among others)."""


@pytest.mark.slow
async def test_the_read_only_commands_let_through_are_ones_claude_code_runs_without_asking(tmp_path):
    """Each example passes ``read_only()`` and the real CLI runs it without calling ``can_use_tool``;
    each command the CLI prompts for fails ``read_only()``."""
    assert all(read_only(c) for c in READ_ONLY_EXAMPLES)
    assert not any(read_only(c) for c in PROMPTED)
    workdir = tmp_path / "work"
    prepare(workdir)
    (workdir / "src").mkdir()
    (workdir / "src" / "b.txt").write_text("foo\n")
    asked: list[str] = []

    async def can_use_tool(tool_name, tool_input, context):
        asked.append(tool_input["command"])
        return PermissionResultDeny(message="not in this test")

    commands = [*READ_ONLY_EXAMPLES, *PROMPTED]
    async with ScriptedModel.start(
        [*(tool_use("Bash", {"command": c}) for c in commands), text("done")]
    ) as model:
        await run(
            ClaudeAgentOptions(
                **run_kwargs(workdir, model, tmp_path / "cfg", tools=["Bash"]), can_use_tool=can_use_tool
            )
        )
    assert asked == PROMPTED


def _gate_argv(settings: str) -> list[str]:
    [entry] = json.loads(settings)["hooks"]["PreToolUse"]
    return shlex.split(entry["hooks"][0]["command"])


def test_options_tell_the_gate_the_runs_allow_rules(tmp_path):
    workdir = tmp_path / "work"
    (workdir / ".claude").mkdir(parents=True)
    (workdir / ".claude" / "settings.json").write_text(
        json.dumps({"permissions": {"allow": ["Bash(make lint)"]}})
    )
    (workdir / ".claude" / "settings.local.json").write_text(
        json.dumps({"permissions": {"allow": ["Write(notes/*)"]}})
    )
    approver = SlackApprover("redis://127.0.0.1:9/0")
    quoted = "Bash(echo 'it''s' \"$HOME\" ; x)"
    options = approver.options(
        cwd=workdir,
        setting_sources=["project"],
        allowed_tools=["Bash(npm test:*)", quoted],
        settings=json.dumps({"permissions": {"allow": ["Bash(make test)"]}}),
    )
    argv = _gate_argv(str(options.settings))
    assert "--allow-read-only" in argv
    assert [a.removeprefix("--allow=") for a in argv if a.startswith("--allow=")] == [
        "Bash(npm test:*)",
        quoted,
        "Bash(make lint)",
        "Bash(make test)",
    ]
    isolated = approver.options(cwd=workdir, setting_sources=[], allowed_tools=["Bash(npm test:*)"])
    assert [a for a in _gate_argv(str(isolated.settings)) if a.startswith("--allow=")] == [
        "--allow=Bash(npm test:*)"
    ]
    everything = approver.options(cwd=workdir, env={"CLAUDE_CONFIG_DIR": str(tmp_path / "none")})
    assert "--allow=Write(notes/*)" in _gate_argv(
        str(everything.settings)
    )  # None loads every source, as the CLI does


@pytest.mark.slow
async def test_the_claude_code_gate_lets_through_only_what_it_is_told(redis_server, redis):
    ls = hook_input("toolu_ls", {"command": "ls"})
    npm = hook_input("toolu_npm", {"command": "npm test --ci"})
    told = await gate(
        redis_server.url, npm, "--allow", "Bash(npm test:*)", "--wait", "0", entrypoint="sdk-py"
    )
    assert told.code == 0 and told.stdout == "{}"  # no decision: Claude Code's own rules decide
    read = await gate(redis_server.url, ls, "--allow-read-only", "--wait", "0", entrypoint="sdk-py")
    assert read.code == 0 and read.stdout == "{}"
    assert await redis.dbsize() == 0  # nothing asked
    # By default the Claude Code gate still asks about everything it matches.
    default = await gate(
        redis_server.url, ls, "--allow", "Bash(npm test:*)", "--wait", "0", entrypoint="sdk-py"
    )
    assert default.decision["permissionDecision"] == "ask"


def test_the_gate_command_stays_within_one_shell_argument():
    # The CLI runs the hook as `sh -c COMMAND`; Linux refuses one argument over 128 KiB.
    approver = SlackApprover("redis://127.0.0.1:9/0")
    rules = [f"Bash(tool-{i:05} run:*)" for i in range(10_000)]
    command = json.loads(approver.settings(allow=[*rules, *rules]))["hooks"]["PreToolUse"][0]["hooks"][0][
        "command"
    ]
    assert len(command.encode()) < 128 * 1024
    kept = [a.removeprefix("--allow=") for a in shlex.split(command) if a.startswith("--allow=")]
    assert kept == rules[: len(kept)] and len(kept) > 1000  # in order, each once; the rest are asked
