"""Claude Code with the gate as its ``PermissionRequest`` hook, end to end: the real CLI in
``-p``, the scripted model, real workers, the fake Slack, real Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest

from bot.demo.scripted_model import text, tool_use
from bot.slack.ids import Action
from tests.conftest import posted
from tests.fakes.agent_env import clean_agent_env
from tests.fakes.claude_cli import gate_hook, scripted_run
from tests.fakes.slack_api import FakeSlack
from tests.fakes.stalled_redis import StalledRedis
from tests.fakes.worker import Worker

pytestmark = pytest.mark.slow  # every test runs the real Claude Code CLI

HOOK = gate_hook("PermissionRequest", "--agent-name laptop")
MAKEFILE = "build:\n\techo built >> built.txt\nclean:\n\techo cleaned >> cleaned.txt\n"


@pytest.fixture(autouse=True)
def _agent_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_agent_env(monkeypatch)


def bash(command: str) -> dict[str, str]:
    return {"command": command, "description": command}


def in_background(*steps: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
    """What people do in Slack while the agent runs, one step after the other."""

    async def run() -> None:
        for step in steps:
            await step()

    return asyncio.create_task(run())


def clicks(worker: Worker, slack: FakeSlack, *actions: Action) -> asyncio.Task[None]:
    """Click ``actions[i]`` on the (i+1)-th request message once it is posted."""

    def click(index: int, action: Action) -> Callable[[], Awaitable[None]]:
        async def step() -> None:
            await worker.click("U_ALICE", action, await posted(slack, count=index + 1), name="alice")

        return step

    return in_background(*(click(i, a) for i, a in enumerate(actions)))


def texts(slack: FakeSlack) -> list[str]:
    return [json.dumps(message.blocks) for message in slack.roots()]


async def test_slack_is_asked_only_what_claude_code_would_ask(tmp_path, redis_server, start_worker, slack):
    worker = await start_worker()
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "notes.txt").write_text("hello\n")
    (tmp_path / "work" / "Makefile").write_text(MAKEFILE)
    settings = {**HOOK, "permissions": {"allow": ["Bash(make build:*)"]}}
    clicker = clicks(worker, slack, Action.APPROVE)
    run, model, workdir = await scripted_run(
        tmp_path,
        [
            tool_use("Bash", bash("ls")),
            tool_use("Bash", bash("cat notes.txt")),
            tool_use("Bash", bash("make build")),
            tool_use("Bash", bash("rm notes.txt")),
            text("done"),
        ],
        settings,
        redis_url=redis_server.url,
    )
    await asyncio.wait_for(clicker, 10)

    assert run.code == 0, run.stderr
    [asked] = texts(slack)  # only the rm
    assert "rm notes.txt" in asked
    assert not (workdir / "notes.txt").exists()  # approved, so it ran
    assert (workdir / "built.txt").read_text() == "built\n"  # permissions.allow: not asked
    assert all(not r.is_error for r in model.tool_results())


async def test_a_subagents_call_is_asked_naming_the_subagent(tmp_path, redis_server, start_worker, slack):
    worker = await start_worker()
    clicker = clicks(worker, slack, Action.APPROVE)
    task = {
        "description": "clean up",
        "prompt": "remove the file",
        "subagent_type": "general-purpose",
        "run_in_background": False,
    }
    run, _model, workdir = await scripted_run(
        tmp_path,
        [
            tool_use("Agent", task),
            tool_use("Bash", bash("echo sub >> sub.txt")),  # the subagent's turn
            text("removed"),  # the subagent's answer
            text("done"),
        ],
        HOOK,
        redis_url=redis_server.url,
        tools="Bash,Agent",
    )
    await asyncio.wait_for(clicker, 10)

    assert run.code == 0, run.stderr
    [asked] = texts(slack)
    assert "laptop (subagent general-purpose " in asked
    assert (workdir / "sub.txt").read_text() == "sub\n"


async def test_always_allow_stops_asking_for_that_rule_in_the_session(
    tmp_path, redis_server, start_worker, slack
):
    worker = await start_worker()
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "Makefile").write_text(MAKEFILE)
    clicker = clicks(worker, slack, Action.ALWAYS_ALLOW, Action.APPROVE)
    run, _model, workdir = await scripted_run(
        tmp_path,
        [
            tool_use("Bash", bash("make build")),  # asked: Always allow "make build *"
            tool_use("Bash", bash("make build V=1")),  # covered by the rule granted for the session
            tool_use("Bash", bash("make clean")),  # another command: asked
            text("done"),
        ],
        HOOK,
        redis_url=redis_server.url,
    )
    await asyncio.wait_for(clicker, 10)

    assert run.code == 0, run.stderr
    asked = texts(slack)
    assert len(asked) == 2 and "make build" in asked[0] and "make clean" in asked[1]
    assert (workdir / "built.txt").read_text() == "built\nbuilt\n"
    assert (workdir / "cleaned.txt").read_text() == "cleaned\n"
    assert not (workdir / ".claude").exists()  # granted for the session: no settings file written


async def test_modify_runs_the_edited_command(tmp_path, redis_server, start_worker, slack):
    worker = await start_worker()

    async def edit() -> None:
        await worker.modify(
            "U_ALICE", await posted(slack), {"command": "echo edited >> edited.txt"}, name="alice"
        )

    clicker = in_background(edit)
    run, _model, workdir = await scripted_run(
        tmp_path,
        [tool_use("Bash", bash("echo asked >> asked.txt")), text("done")],
        HOOK,
        redis_url=redis_server.url,
    )
    await asyncio.wait_for(clicker, 10)

    assert run.code == 0, run.stderr
    assert (workdir / "edited.txt").read_text() == "edited\n"
    assert not (workdir / "asked.txt").exists()


async def test_deny_and_stop_ends_the_run_with_the_reason(tmp_path, redis_server, start_worker, slack):
    worker = await start_worker()

    async def stop() -> None:
        await worker.deny("U_BOB", await posted(slack), "Wrong cluster.", name="bob", stop=True)

    clicker = in_background(stop)
    run, model, workdir = await scripted_run(
        tmp_path,
        [
            tool_use("Bash", bash("echo ran >> marker.txt")),
            text("carrying on regardless"),
        ],
        HOOK,
        redis_url=redis_server.url,
    )
    await asyncio.wait_for(clicker, 10)

    assert not (workdir / "marker.txt").exists()
    assert model.remaining == 1  # the model was never asked to carry on
    assert run.code == 1 and run.result["terminal_reason"] == "aborted_tools"
    [denied] = run.of("system", "permission_denied")
    assert "Wrong cluster." in denied["message"] and "The run was stopped" in denied["message"]


@pytest.mark.parametrize("failure", ["redis down", "redis stalled", "broken install"])
async def test_any_gate_failure_denies_and_the_tool_does_not_run(tmp_path, redis_server, failure):
    settings = gate_hook("PermissionRequest", timeout=10)
    if failure == "broken install":  # the hook's Python cannot import the package's dependencies
        broken = tmp_path / "broken"
        (broken / "redis").mkdir(parents=True)
        (broken / "redis" / "__init__.py").write_text("raise ImportError('broken install')\n")
        hook = settings["hooks"]["PermissionRequest"][0]["hooks"][0]
        hook["command"] = f"cd {broken} && {hook['command']}"
    with StalledRedis() as stalled:
        url = {"redis down": "redis://127.0.0.1:9/0", "redis stalled": stalled.url}.get(
            failure, redis_server.url
        )
        run, model, workdir = await scripted_run(
            tmp_path, [tool_use("Bash", bash("echo ran >> marker.txt")), text("ok")], settings, redis_url=url
        )
    assert run.code == 0, run.stderr
    assert not (workdir / "marker.txt").exists()
    [result] = model.tool_results()
    assert result.is_error
    if failure == "redis down":
        assert "could not be reached" in result.content and "The tool was not run" in result.content
    if failure == "redis stalled":
        assert "Redis did not answer" in result.content
