"""A Redis that accepts connections and never answers: nothing waits forever, and no tool runs.

Claude Code ignores a command hook that exceeds its ``timeout`` and carries on
with its normal permission flow, so a tool the user's settings allow runs
(DESIGN.md §4, "Hook timeouts fall through"). These tests point the real CLI,
the gate, ``SlackApprover`` and the commands at ``StalledRedis`` (or pause a
real redis-server) and check what a user would see: the tool did not run, and
what the model was told.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import claude_agent_sdk
import pytest
from redis.asyncio import Redis

from bot import SlackApprover
from bot.approvals.model import Decision, State, request_id_for
from bot.approvals.queue import JobQueue
from bot.demo.scripted_model import ScriptedModel, text, tool_use
from bot.redis_client import connect
from tests.audit_streams import audit_length
from tests.conftest import context, within
from tests.fakes.agent_env import clean_agent_env
from tests.fakes.redis_server import RedisServer, free_port
from tests.fakes.stalled_redis import StalledRedis
from tests.test_cli import configured, run
from tests.test_gate import finish, gate, hook_input, start_gate

pytestmark = (
    pytest.mark.slow
)  # every test waits out read timeouts or deadlines, most in `python -m bot` processes

CLI = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
MARKER = {"command": "echo ran >> marker.txt", "description": "Append to a marker file"}
HOOK_TIMEOUT = 8
"""The hook's ``timeout`` in these runs: short, so a gate that overran it would be seen at once."""
BOUND = 45
"""How long a test lets a call take before it counts as hanging (a bound, not a speed target)."""


def stuck_estimator(tool_name: str, tool_input: dict[str, Any]) -> float:
    """A cost estimator that blocks its thread (say, a synchronous HTTP call that never returns)."""
    import time

    time.sleep(3600)
    return 1.0


async def claude_with_gate(tmp_path: Path, redis_url: str, gate_args: str) -> tuple[Path, ScriptedModel]:
    """``claude -p`` with the gate in settings.json and Bash allowed by the user's settings.

    ``--allowedTools Bash`` is what makes a fall-through dangerous: without a
    decision from the hook, the CLI's own rules run the call.
    """
    workdir = tmp_path / "work"
    workdir.mkdir()
    hook = {
        "type": "command",
        "command": f"{sys.executable} -m bot gate {gate_args}",
        "timeout": HOOK_TIMEOUT,
    }
    settings = json.dumps({"hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [hook]}]}})
    async with ScriptedModel.start([tool_use("Bash", MARKER), text("done")]) as model:
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env.update(model.cli_env(config_dir=tmp_path / "cfg"), REDIS_URL=redis_url)
        process = await asyncio.create_subprocess_exec(
            str(CLI),
            "-p",
            "do the task",
            "--settings",
            settings,
            "--tools",
            "Bash",
            "--allowedTools",
            "Bash",
            "--output-format",
            "json",
            cwd=workdir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _out, err = await asyncio.wait_for(process.communicate(), 90)
        assert process.returncode == 0, err.decode()
    return workdir, model


async def test_a_gate_on_a_stalled_redis_blocks_before_its_hook_times_out(tmp_path, monkeypatch):
    clean_agent_env(monkeypatch)
    with StalledRedis() as stalled:
        workdir, model = await claude_with_gate(tmp_path, stalled.url, f"--hook-timeout {HOOK_TIMEOUT}")
        assert stalled.connections >= 1  # the gate got through, and then heard nothing

    assert not (workdir / "marker.txt").exists()
    [result] = model.tool_results()
    assert result.is_error
    assert "Blocked: the approval gate got no answer in time" in result.content
    assert "Redis did not answer" in result.content and "The tool was not run." in result.content


async def test_a_wait_longer_than_the_hook_timeout_is_refused_and_nothing_runs(
    tmp_path, monkeypatch, redis_server, redis, start_worker, slack
):
    clean_agent_env(monkeypatch)
    await start_worker()
    workdir, model = await claude_with_gate(
        tmp_path, redis_server.url, f"--wait 30 --hook-timeout {HOOK_TIMEOUT}"
    )

    assert not (workdir / "marker.txt").exists()
    [result] = model.tool_results()
    assert result.is_error
    assert f"--wait 30 does not fit below its hook's {HOOK_TIMEOUT}-second timeout" in result.content
    assert "The tool was not run." in result.content
    assert await audit_length(redis) == 0  # refused before anything was asked
    assert slack.roots() == []


async def test_the_gate_blocks_within_its_deadline_on_a_stalled_redis():
    with StalledRedis() as stalled:
        run = await gate(stalled.url, hook_input("toolu_stalled"), "--hook-timeout", str(HOOK_TIMEOUT))
    assert run.code == 2 and run.stdout == ""
    assert run.stderr.startswith("Blocked: the approval gate got no answer in time")
    assert f"below its hook's {HOOK_TIMEOUT}-second timeout" in run.stderr


async def test_the_gate_blocks_on_a_stalled_redis_with_the_default_hook_timeout_too():
    # No --hook-timeout: the gate assumes Claude Code's 600 s, and its Redis
    # client's own read timeout ends the wait long before that.
    with StalledRedis() as stalled:
        process = await start_gate(stalled.url, hook_input("toolu_stalled_default"))
        run = await asyncio.wait_for(finish(process), BOUND)
    assert run.code == 2 and run.stdout == ""
    assert "Redis did not answer in time" in run.stderr and "The tool was not run." in run.stderr


async def test_a_stuck_event_loop_cannot_keep_the_gate_past_its_deadline(redis_server, redis):
    # The estimator blocks the gate's only thread: asyncio's own timeout can
    # never fire, so the watchdog thread has to answer.
    run = await gate(
        redis_server.url,
        hook_input("toolu_stuck_loop"),
        "--hook-timeout",
        str(HOOK_TIMEOUT),
        "--cost-estimator",
        "tests.test_stalled_redis:stuck_estimator",
    )
    assert run.code == 2 and run.stdout == ""
    assert run.stderr.startswith("Blocked: the approval gate got no answer in time")
    assert await redis.dbsize() == 0  # the call was stopped before it was stored


async def test_can_use_tool_on_a_stalled_redis_denies_within_a_bound():
    with StalledRedis() as stalled:
        approver = SlackApprover(stalled.url, timeout=60)
        try:
            async with asyncio.timeout(BOUND):
                # Several calls at once: each is bounded, not queued behind the others' attempts.
                results = await asyncio.gather(
                    *(
                        approver.can_use_tool(
                            "Bash", {"command": f"make deploy-{i}"}, context(f"toolu_stall_{i}")
                        )
                        for i in range(4)
                    )
                )
        finally:
            async with asyncio.timeout(BOUND):
                await approver.close()
        assert stalled.connections >= 1
    for result in results:
        assert result.behavior == "deny"
        assert result.message.startswith("Denied: Redis did not answer in time")
        assert result.message.endswith("The tool was not run.")


async def test_can_use_tool_denies_when_redis_stalls_after_it_subscribed(tmp_path):
    # A real redis-server, paused (CLIENT PAUSE) once the approver is listening:
    # it accepts and reads every command, and answers none until the pause ends.
    server = RedisServer(tmp_path)
    server.start()
    client = connect(server.url, name="agent-under-test", read_timeout=1.0)
    approver = SlackApprover(client, timeout=60)
    admin = Redis.from_url(server.url)
    try:
        await approver.start()
        await admin.execute_command("CLIENT", "PAUSE", "30000", "ALL")
        async with asyncio.timeout(15):  # well inside the 30 s pause: it was the read timeout that ended it
            result = await approver.can_use_tool("Bash", {"command": "make deploy"}, context("toolu_paused"))
        assert result.behavior == "deny"
        assert result.message.startswith("Denied: Redis did not answer in time")
        async with asyncio.timeout(15):
            await approver.close()
    finally:
        await admin.aclose()
        await client.aclose()
        server.stop()  # SIGTERM ends a paused server too


async def test_an_idle_subscription_outlives_the_read_timeout(redis_server, redis, store):
    # The decision subscription reads with its own timeout (get_message), so a
    # short socket read timeout must not tear it down while nothing is decided.
    client = connect(redis_server.url, name="agent-under-test", read_timeout=0.5)
    approver = SlackApprover(client, timeout=60)
    try:
        await approver.start()
        call = asyncio.create_task(approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_idle")))
        request_id = request_id_for("toolu_idle")
        async with within(5, "the approver never stored its request"):
            while await store.get(request_id) is None:
                await asyncio.sleep(0.01)
        subscribers = [c["id"] for c in await redis.client_list(_type="pubsub")]
        await asyncio.sleep(2)  # four read timeouts of silence
        assert [c["id"] for c in await redis.client_list(_type="pubsub")] == subscribers
        await store.decide(request_id, Decision(State.APPROVED, actor="U_ALICE", revision=0))
        async with asyncio.timeout(BOUND):
            assert (await call).behavior == "allow"
    finally:
        await approver.close()
        await client.aclose()


async def test_a_blocking_read_of_the_job_stream_is_not_cut_by_the_read_timeout(redis_server, redis):
    # Workers read the jobs stream with XREADGROUP BLOCK 1000: the read
    # timeout must be longer, or every quiet second would be an error.
    client = connect(redis_server.url, name="worker-under-test")
    try:
        queue = JobQueue(client, "consumer-1", retry_after=30)
        await queue.ensure_group(0)
        assert await queue.take(0, count=1, block_ms=1000) == []
    finally:
        await client.aclose()


async def test_check_on_a_stalled_redis_fails_that_check_and_ends(tmp_path, redis_server, slack):
    with StalledRedis() as stalled:
        code, out, _err = await asyncio.wait_for(
            run("check", cwd=tmp_path, **configured(redis_server, slack, REDIS_URL=stalled.url)), BOUND
        )
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(f"FAIL redis: {stalled.url}")
    assert lines[1].startswith("ok   slack token")


async def test_audit_on_a_stalled_redis_ends(tmp_path):
    with StalledRedis() as stalled:
        code, out, _err = await asyncio.wait_for(run("audit", cwd=tmp_path, REDIS_URL=stalled.url), BOUND)
    assert code != 0 and out == ""


async def test_serve_on_a_stalled_redis_reports_unhealthy_and_stops_when_told(tmp_path, redis_server, slack):
    from tests.test_cli import env

    port = free_port()
    with StalledRedis() as stalled:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "serve",
            cwd=tmp_path,
            env=env(**configured(redis_server, slack, REDIS_URL=stalled.url, PORT=str(port))),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with aiohttp.ClientSession() as session, asyncio.timeout(BOUND):
                while True:
                    try:
                        async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                            assert response.status == 503
                            break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.05)
        finally:
            process.terminate()
            await asyncio.wait_for(process.communicate(), BOUND)
    assert process.returncode == 0
