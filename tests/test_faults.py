"""Faults with real processes: an agent host killed and restarted, a bot worker
killed mid-job, Slack failing on post and update. (Redis restarts: see
test_approver and test_defer.)"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.approvals.policy import Policy
from bot.approvals.queue import JobQueue
from bot.demo.scripted_model import ScriptedModel, text, tool_use
from bot.slack.app import background_client
from bot.slack.ids import Action
from bot.slack.jobs import MAX_DELIVERIES, SlackJobWorker
from tests.conftest import context, posted
from tests.fakes.agent_env import clean_agent_env
from tests.fakes.bot_settings import CHANNEL, SIGNING_SECRET, settings_for
from tests.fakes.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent


def child_env(**extra: str) -> dict[str, str]:
    """The test's environment without anything that would point a child elsewhere."""
    prefixes = ("ANTHROPIC_", "CLAUDE", "SLACK_", "REDIS_URL", "APPROVAL_", "JOB_", "SWEEP_", "PORT")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(extra)
    return env


class Lines:
    """A child process whose stdout is one JSON object per line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def next(self, timeout: float = 30) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            _, err = await self.process.communicate()
            raise AssertionError(f"the process ended ({self.process.returncode}): {err.decode()[-2000:]}")
        return json.loads(line)


async def agent_host(redis_url: str, workdir: Path, cli_env: dict[str, str], *resume: str) -> Lines:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "tests" / "fakes" / "agent_process.py"),
        str(workdir),
        json.dumps(cli_env),
        *resume,
        env=child_env(REDIS_URL=redis_url),
        cwd=workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    return Lines(process)


@pytest.mark.slow
async def test_an_agent_host_killed_while_waiting_applies_the_decision_on_restart(
    tmp_path, monkeypatch, redis_server, start_worker, slack
):
    clean_agent_env(monkeypatch)
    worker = await start_worker()
    workdir = tmp_path / "work"
    workdir.mkdir()
    marker = {"command": "echo ran >> marker.txt", "description": "Append to a marker file"}
    async with ScriptedModel.start([tool_use("Bash", marker), text("done")]) as model:
        cli_env = model.cli_env(config_dir=tmp_path / "cfg")
        first = await agent_host(redis_server.url, workdir, cli_env)
        deferred = (await first.next())["deferred"]
        message = await posted(slack)
        first.process.kill()  # SIGKILL: no clean-up of any kind
        await first.process.wait()

        await worker.click("U_ALICE", Action.APPROVE, message, name="alice")  # while nobody waits

        second = await agent_host(
            redis_server.url, workdir, cli_env, deferred["session_id"], deferred["tool_use_id"]
        )
        assert await second.next() == {"decided": "approved"}
        assert await second.next() == {"result": "end_turn"}
        await second.process.wait()

    assert (workdir / "marker.txt").read_text() == "ran\n"
    [result] = model.tool_results()
    assert not result.is_error
    assert len(slack.roots()) == 1  # the restart asked nothing again


@pytest.mark.slow
async def test_a_worker_process_killed_between_taking_and_posting_leaves_the_post_to_another(
    tmp_path, redis_server, start_worker, make_approver, slack
):
    slack.hang("chat.postMessage")  # the first post never completes
    doomed = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=child_env(
            REDIS_URL=redis_server.url,
            SLACK_BOT_TOKEN=slack.token,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=slack.base_url,
            APPROVAL_CHANNEL=CHANNEL,
            PORT=str(free_port()),
        ),
    )
    try:
        approver = await make_approver()
        call = asyncio.create_task(
            approver.can_use_tool("Bash", {"command": "make deploy"}, context("toolu_orphan"))
        )
        await slack.wait_for(lambda: slack.hung == ["chat.postMessage"], timeout=20)
    finally:
        doomed.kill()
        await doomed.communicate()

    survivor = await start_worker(job_retry_after=0.3)
    message = await posted(slack)
    await survivor.click("U_ALICE", Action.APPROVE, message)
    assert (await asyncio.wait_for(call, 5)).behavior == "allow"
    await asyncio.sleep(0.6)  # past another retry interval: still one message
    assert len(slack.roots()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["rate_limit", "server_error"])
async def test_slack_failing_on_post_and_update_is_retried_off_the_request_path(
    fault, start_worker, make_approver, slack
):
    worker = await start_worker()
    inject = slack.rate_limit if fault == "rate_limit" else slack.server_error
    inject("chat.postMessage", times=2)
    inject("chat.update", times=2)
    approver = await make_approver()
    call = asyncio.create_task(approver.can_use_tool("Bash", {"command": "make"}, context(f"toolu_{fault}")))
    message = await posted(slack)
    response = await worker.click("U_ALICE", Action.APPROVE, message)
    assert response.status == 200  # the click is answered while Slack still fails
    assert (await asyncio.wait_for(call, 5)).behavior == "allow"

    await slack.wait_for(lambda: message.edits >= 1, timeout=10)
    assert "Approved" in message.blocks[0]["text"]["text"]
    assert len(slack.roots()) == 1
    statuses = [c.status for c in slack.calls if c.method in ("chat.postMessage", "chat.update")]
    assert statuses.count(200) == 2 and len(statuses) == 6


@pytest.mark.slow
async def test_a_post_slack_keeps_failing_denies_as_undeliverable(
    redis_server, redis, store, slack, make_approver
):
    slack.server_error("chat.postMessage", times=1000)
    settings = settings_for(redis_server, slack)
    queue = JobQueue(redis, "worker-5xx", retry_after=0.1)
    worker = SlackJobWorker(
        store,
        queue,
        background_client(settings, backoff=0.01),
        policy=Policy(),
        default_channel=CHANNEL,
        sweep_interval=0.05,
    )
    await worker.start()
    try:
        approver = await make_approver(timeout=0)  # the agent would wait forever
        result = await asyncio.wait_for(
            approver.can_use_tool("Bash", {"command": "make"}, context("toolu_5xx")), 20
        )
    finally:
        await worker.close()
    assert result.behavior == "deny"
    assert "could not be posted to Slack" in result.message and "The tool was not run" in result.message
    assert slack.roots() == []
    attempts = slack.calls_to("chat.postMessage")
    assert len(attempts) > MAX_DELIVERIES and {c.status for c in attempts} == {503}  # retried, never posted
