"""The playground's server side: its Slack stand-in, its page API, its storage and its command.

The page itself is driven in a real browser in ``test_demo_browser.py``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.approvals.model import State
from bot.approvals.store import RequestStore
from bot.demo import people, scenario
from bot.demo.scripted_model import ScriptedModel, text, tool_use
from tests.demo_driver import button, playground
from tests.fakes.agent_env import clean_agent_env
from tests.fakes.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _agent_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_agent_env(monkeypatch)


async def test_bad_requests_from_the_page_are_refused_and_change_nothing(tmp_path):
    async with playground(tmp_path / "work") as demo:
        first = await demo.request(1)
        block_id, action_id = button(first, "Approve")
        click = {"user": "U0ALICE", "ts": first["ts"], "block_id": block_id, "action_id": action_id}

        async with demo.session.get(f"{demo.url}/demo/state", params={"user": "U0MALLORY"}) as response:
            assert response.status == 400
        refused = [
            ({**click, "user": "U0MALLORY"}, 400, "unknown person"),
            ({**click, "ts": "1700000000.999999"}, 404, "message_not_found"),
            ({**click, "action_id": "approval.approve_everything"}, 404, "that message shows no such element"),
            ({**click, "block_id": "approval.actions.someone-else.0"}, 404, "that message shows no such element"),
            ({**click, "selected": {"$gt": ""}}, 400, "a selection is"),
            ({key: value for key, value in click.items() if key != "ts"}, 400, "ts is missing"),
        ]
        for body, status, error in refused:
            got, answer = await demo.post("/demo/click", body)
            assert (got, answer["ok"]) == (status, False) and answer["error"].startswith(error), (body, answer)
        async with demo.session.post(f"{demo.url}/demo/click", data=b"\xff not json") as response:
            assert response.status == 400
        status, answer = await demo.post("/demo/submit", {"user": "U0ALICE", "view_id": "V0NOPE", "values": {}})
        assert (status, answer["error"]) == (404, "that modal is not open")
        assert (await demo.post("/demo/post", {"user": "U0ALICE", "text": "   "}))[0] == 400
        assert await demo.post("/demo/agent/run", {}) == (409, {"ok": False, "error": "the agent is still running"})

        # Still pending: nobody decided anything, and the agent was told nothing.
        assert button(await demo.request(1), "Approve")
        assert "[allowed]" not in demo.out.getvalue() and "[denied]" not in demo.out.getvalue()
        assert not (tmp_path / "work" / "hello.txt").exists()


async def test_someone_elses_modal_cannot_be_submitted(tmp_path):
    async with playground(tmp_path / "work") as demo:
        first = await demo.request(1)
        await demo.click("U0BOB", first, "Deny")
        view = await demo.open_view("U0BOB")
        status, answer = await demo.submit("U0ALICE", view, {"reason": {"reason_input": "not mine to give"}})
        assert (status, answer["error"]) == (404, "that modal is not open")
        assert (await demo.state("U0ALICE"))["view"] is None
        assert (await demo.state("U0BOB"))["view"]["id"] == view["id"]
        assert "[denied]" not in demo.out.getvalue()


async def test_a_required_field_left_empty_is_not_submitted(tmp_path):
    async with playground(tmp_path / "work") as demo:
        await demo.click("U0ALICE", await demo.request(1), "Modify")
        view = await demo.open_view("U0ALICE")
        answer = await demo.submit("U0ALICE", view, {"edit.command": {"value": ""}})
        assert answer == (200, {"ok": False, "errors": {"edit.command": "Please fill out this field."}})
        assert (await demo.state())["view"]["id"] == view["id"]  # still open, as in Slack
        assert "[allowed]" not in demo.out.getvalue()


async def test_the_slack_stand_in_refuses_what_slack_refuses(tmp_path):
    async with playground(tmp_path / "work", run_agent=False) as demo:
        api = f"{demo.url}/api/chat.postMessage"
        good = {"channel": people.CHANNEL, "text": "hi"}
        too_long = {"type": "actions", "elements": [
            {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "x" * 76}}]}
        cases = [
            ({"Authorization": "Bearer xoxb-forged"}, good, "invalid_auth"),
            ({}, {**good, "channel": "C0ELSEWHERE"}, "channel_not_found"),
            ({}, {**good, "blocks": [too_long]}, "invalid_blocks"),
            ({}, {"channel": people.CHANNEL}, "no_text"),
        ]
        for headers, body, error in cases:
            headers = {"Authorization": f"Bearer {people.BOT_TOKEN}", **headers}
            async with demo.session.post(api, json=body, headers=headers) as response:
                assert (await response.json())["error"] == error
        async with demo.session.post(f"{demo.url}/api/admin.users.remove",
                                     headers={"Authorization": f"Bearer {people.BOT_TOKEN}"}) as response:
            assert (await response.json())["error"] == "unknown_method"
        assert (await demo.state())["messages"] == []


async def test_a_thread_reply_reaches_the_model_with_the_deny_and_shows_as_text(tmp_path):
    async with playground(tmp_path / "work") as demo:
        first = await demo.request(1)
        said = "<script>alert(1)</script> *use staging* <!channel>"
        assert await demo.post("/demo/post", {"user": "U0BOB", "text": said, "thread_ts": first["ts"]}) == (200, {"ok": True})
        [reply] = (await demo.state())["threads"][first["ts"]]
        # Escaped as Slack's own client escapes what people type: no tags, no @channel.
        assert reply["text"] == "&lt;script&gt;alert(1)&lt;/script&gt; *use staging* &lt;!channel&gt;"
        await demo.click("U0ALICE", first, "Deny")
        view = await demo.open_view("U0ALICE")
        assert await demo.submit("U0ALICE", view, {"reason": {"reason_input": "see thread"}}) == (200, {"ok": True})
        out = await demo.said("[denied]")
        assert "Reason: see thread" in out and "Discussion in Slack: @bob: &lt;script&gt;" in out
        assert not (tmp_path / "work" / "hello.txt").exists()


async def test_the_slash_command_answers_only_the_person_who_typed_it(tmp_path):
    async with playground(tmp_path / "work") as demo:
        await demo.request(1)
        assert await demo.post("/demo/post", {"user": "U0BOB", "text": "/approvals", "thread_ts": None}) == (200, {"ok": True})
        [answer] = [m for m in (await demo.state("U0BOB"))["messages"] if m["ephemeral"]]
        assert "Waiting for you" in str(answer["blocks"]) and "echo" in str(answer["blocks"])
        assert [m for m in (await demo.state("U0ALICE"))["messages"] if m["ephemeral"]] == []


async def test_a_team_rule_added_with_always_allow_can_be_removed_from_the_listing(tmp_path):
    async with playground(tmp_path / "work") as demo:
        await demo.click("U0ALICE", await demo.request(1), "Always allow")
        await demo.said("[allowed]")
        await demo.post("/demo/post", {"user": "U0ALICE", "text": "/approvals rules", "thread_ts": None})
        [listing] = [m for m in (await demo.state())["messages"] if m["ephemeral"]]
        assert "echo 'hello from the approvals playground'" in str(listing["blocks"])
        block_id, action_id = button(listing, "Remove")
        answer = await demo.post("/demo/click", {"user": "U0ALICE", "ts": listing["ts"], "block_id": block_id,
                                                 "action_id": action_id, "selected": None, "ephemeral": True})
        assert answer == (200, {"ok": True})
        [listing] = [m for m in (await demo.state())["messages"] if m["ephemeral"]]
        assert listing["text"].startswith("Removed") and "Remove" not in str(listing["blocks"])


async def test_with_redis_url_the_requests_live_in_that_redis(tmp_path, redis_server, redis):
    async with playground(tmp_path / "work", redis_url=redis_server.url) as demo:
        assert demo.demo.storage.description == f"storage: Redis at {redis_server.url}"
        first = await demo.request(1)
        store = RequestStore(redis)
        [pending] = await store.many(await store.pending())
        assert pending.tool_input["command"].startswith("echo 'hello")
        await demo.click("U0ALICE", first, "Approve")
        await demo.said("[allowed]")
        assert (await store.get(pending.id)).state is State.APPROVED


async def test_with_an_api_key_the_agent_is_given_the_task(tmp_path, monkeypatch):
    script = [tool_use("Bash", {"command": "echo hi > hello.txt"}), text("Done: hello.txt is written.")]
    async with ScriptedModel.start(script) as model:
        # The key's agent talks to the API the environment names; here, the scripted one.
        monkeypatch.setenv("ANTHROPIC_BASE_URL", model.url)
        async with playground(tmp_path / "work", api_key="sk-ant-test") as demo:
            assert (await demo.state())["agent"]["mode"] == "claude"
            await demo.click("U0ALICE", await demo.request(1), "Approve")
            out = await demo.said("The agent finished")
        first_turn = str(model.turns[0]["messages"])
        assert "AskUserQuestion" in first_turn and "rm -rf data" in first_turn  # the task's prompt
        assert {tool["name"] for tool in model.turns[0]["tools"]} >= set(scenario.TOOLS)
    assert (tmp_path / "work" / "hello.txt").read_text() == "hi\n"
    assert "Done: hello.txt is written." in out


def _demo_command(port: int, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_", "REDIS_URL"))}
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "demo", "--port", str(port), *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


async def test_the_demo_command_serves_the_page_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    process = _demo_command(port)
    try:
        first_line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 30)
        assert first_line.strip() == f"Approvals playground: open http://127.0.0.1:{port}/  (Ctrl-C stops it)"
        notice = await asyncio.to_thread(process.stdout.readline)
        assert notice.strip() == "storage: in-process Redis (fakeredis); several workers or agent hosts need a real one: set REDIS_URL"
        agent_line = await asyncio.to_thread(process.stdout.readline)
        workdir = Path(agent_line.rsplit("working in ", 1)[1].strip())
        assert workdir.is_dir()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/") as response:
                assert response.status == 200 and "<title>" in await response.text()
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(asyncio.to_thread(process.wait), 20) == 0
        assert not workdir.exists()  # the temporary work folder goes with it
    finally:
        process.kill()
        process.communicate()


async def test_a_taken_port_is_a_clear_error(tmp_path):
    async with playground(tmp_path / "work", run_agent=False) as demo:
        port = int(demo.url.rsplit(":", 1)[1])
        process = _demo_command(port)
        _, err = await asyncio.wait_for(asyncio.to_thread(process.communicate), 30)
    assert process.returncode == 2
    assert f"cannot serve the playground on 127.0.0.1:{port}" in err and "--port" in err
