"""The playground's server side: its Slack stand-in, its page API, its storage and its command.

The page itself is driven in a real browser in ``test_demo_browser.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.signature import SignatureVerifier
from yarl import URL

from bot import text as texts
from bot.approvals.model import State
from bot.approvals.store import RequestStore
from bot.demo import people, scenario
from bot.demo.interactions import Interactions
from bot.demo.scripted_model import ScriptedModel, text, tool_use
from bot.demo.workspace import Workspace
from tests.demo_driver import Playground, button, page_token, playground
from tests.fakes.agent_env import clean_agent_env
from tests.fakes.redis_server import free_port
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_workspace import DEFAULT_TOKEN

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _agent_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_agent_env(monkeypatch)


@pytest.mark.slow
async def test_bad_requests_from_the_page_are_refused_and_change_nothing(tmp_path):
    async with playground(tmp_path / "work") as demo:
        first = await demo.request(1)
        block_id, action_id = button(first, "Approve")
        click = {"user": "U0ALICE", "ts": first["ts"], "block_id": block_id, "action_id": action_id}

        state = f"{demo.url}/demo/state"
        async with demo.session.get(state, params={"user": "U0MALLORY"}, headers=demo.headers) as response:
            assert response.status == 400
        refused = [
            ({**click, "user": "U0MALLORY"}, 400, "unknown person"),
            ({**click, "ts": "1700000000.999999"}, 404, "message_not_found"),
            (
                {**click, "action_id": "approval.approve_everything"},
                404,
                "that message shows no such element",
            ),
            (
                {**click, "block_id": "approval.actions.someone-else.0"},
                404,
                "that message shows no such element",
            ),
            ({**click, "selected": {"$gt": ""}}, 400, "a selection is"),
            ({key: value for key, value in click.items() if key != "ts"}, 400, "ts is missing"),
        ]
        for body, status, error in refused:
            got, answer = await demo.post("/demo/click", body)
            assert (got, answer["ok"]) == (status, False) and answer["error"].startswith(error), (
                body,
                answer,
            )
        async with demo.session.post(
            f"{demo.url}/demo/click",
            data=b"\xff not json",
            headers={**demo.headers, "Content-Type": "application/json"},
        ) as response:
            assert response.status == 400
        status, answer = await demo.post(
            "/demo/submit", {"user": "U0ALICE", "view_id": "V0NOPE", "values": {}}
        )
        assert (status, answer["error"]) == (404, "that modal is not open")
        assert (await demo.post("/demo/post", {"user": "U0ALICE", "text": "   "}))[0] == 400
        assert await demo.post("/demo/agent/run", {}) == (
            409,
            {"ok": False, "error": "the agent is still running"},
        )

        # Still pending: nobody decided anything, and the agent was told nothing.
        assert button(await demo.request(1), "Approve")
        assert "[allowed]" not in demo.out.getvalue() and "[denied]" not in demo.out.getvalue()
        assert not (tmp_path / "work" / "hello.txt").exists()


@pytest.mark.slow
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


@pytest.mark.slow
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
        too_long = {
            "type": "actions",
            "elements": [
                {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "x" * 76}}
            ],
        }
        cases = [
            ({"Authorization": "Bearer xoxb-forged"}, good, "invalid_auth"),
            ({}, {**good, "channel": "C0ELSEWHERE"}, "channel_not_found"),
            ({}, {**good, "blocks": [too_long]}, "invalid_blocks"),
            ({}, {"channel": people.CHANNEL}, "no_text"),
        ]
        for headers, body, error in cases:
            headers = {"Authorization": f"Bearer {demo.demo.bot_token}", **headers}
            async with demo.session.post(api, json=body, headers=headers) as response:
                assert (await response.json())["error"] == error
        async with demo.session.post(
            f"{demo.url}/api/admin.users.remove", headers={"Authorization": f"Bearer {demo.demo.bot_token}"}
        ) as response:
            assert (await response.json())["error"] == "unknown_method"
        assert (await demo.state())["messages"] == []


def _section(text: str, **extra: object) -> dict[str, object]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


_HOME_TITLE = {"type": "plain_text", "text": "Home"}
REFUSED_MESSAGES = [
    {"text": "x" * 40_001},
    {"blocks": [{"type": "no_such_block"}]},
    {"blocks": [_section("x" * 3_001)]},
    {"blocks": [_section("x" * 2_900)] * 5},  # over Slack's text budget for all blocks together
    {"blocks": [_section("a", block_id="same"), _section("b", block_id="same")]},
    {"blocks": [{"type": "context", "elements": []}]},
    {"blocks": [_section("x")] * 51},
]
REFUSED_VIEWS = [
    {"type": "home", "blocks": [_section("x" * 3_001)]},
    {"type": "home", "blocks": [_section("x")] * 101},
    {"type": "home", "blocks": [_section("x")], "submit": _HOME_TITLE},
    {"type": "modal", "title": _HOME_TITLE, "blocks": [_section("x")]},
    {"type": "workflow_step", "blocks": [_section("x")]},
]


async def test_the_slack_stand_in_refuses_what_the_tests_fake_slack_refuses(tmp_path):
    """The playground and the tests' fake share one Block Kit check: both refuse each payload, alike."""

    async def answers(url: str, token: str, session: aiohttp.ClientSession) -> list[str]:
        calls = [
            ("chat.postMessage", {"channel": people.CHANNEL, "text": "hi", **m}) for m in REFUSED_MESSAGES
        ]
        calls += [("views.publish", {"user_id": "U0ALICE", "view": v}) for v in REFUSED_VIEWS]
        errors = []
        for method, body in calls:
            headers = {"Authorization": f"Bearer {token}"}
            async with session.post(f"{url}/{method}", json=body, headers=headers) as response:
                errors.append((await response.json()).get("error", "accepted"))
        return errors

    async with (
        playground(tmp_path / "work", run_agent=False) as demo,
        FakeSlack.start(channels={people.CHANNEL: people.CHANNEL_NAME}, rate_scale=None) as fake,
    ):
        ours = await answers(f"{demo.url}/api", demo.demo.bot_token, demo.session)
        theirs = await answers(fake.base_url.rstrip("/"), DEFAULT_TOKEN, demo.session)
    assert "accepted" not in theirs
    assert ours == theirs


@pytest.mark.slow
async def test_a_thread_reply_reaches_the_model_with_the_deny_and_shows_as_text(tmp_path):
    async with playground(tmp_path / "work") as demo:
        first = await demo.request(1)
        said = "<script>alert(1)</script> *use staging* <!channel>"
        assert await demo.post("/demo/post", {"user": "U0BOB", "text": said, "thread_ts": first["ts"]}) == (
            200,
            {"ok": True},
        )
        [reply] = (await demo.state())["threads"][first["ts"]]
        # Escaped as Slack's own client escapes what people type: no tags, no @channel.
        assert reply["text"] == "&lt;script&gt;alert(1)&lt;/script&gt; *use staging* &lt;!channel&gt;"
        await demo.click("U0ALICE", first, "Deny")
        view = await demo.open_view("U0ALICE")
        assert await demo.submit("U0ALICE", view, {"reason": {"reason_input": "see thread"}}) == (
            200,
            {"ok": True},
        )
        out = await demo.said("[denied]")
        assert (
            "Reason: see thread" in out
            and '"text": "<script>alert(1)</script> *use staging* <!channel>"' in out
        )
        assert not (tmp_path / "work" / "hello.txt").exists()


@pytest.mark.slow
async def test_the_slash_command_answers_only_the_person_who_typed_it(tmp_path):
    async with playground(tmp_path / "work") as demo:
        await demo.request(1)
        assert await demo.post("/demo/post", {"user": "U0BOB", "text": "/approvals", "thread_ts": None}) == (
            200,
            {"ok": True},
        )
        [answer] = [m for m in (await demo.state("U0BOB"))["messages"] if m["ephemeral"]]
        assert "Waiting for you" in str(answer["blocks"]) and "echo" in str(answer["blocks"])
        assert [m for m in (await demo.state("U0ALICE"))["messages"] if m["ephemeral"]] == []


@pytest.mark.slow
async def test_a_team_rule_added_with_always_allow_can_be_removed_from_the_listing(tmp_path):
    async with playground(tmp_path / "work") as demo:
        await demo.click("U0ALICE", await demo.request(1), "Always allow")
        await demo.said("[allowed]")
        await demo.post("/demo/post", {"user": "U0ALICE", "text": "/approvals rules", "thread_ts": None})
        [listing] = [m for m in (await demo.state())["messages"] if m["ephemeral"]]
        assert "echo 'hello from the approvals playground'" in str(listing["blocks"])
        block_id, action_id = button(listing, "Remove")
        answer = await demo.post(
            "/demo/click",
            {
                "user": "U0ALICE",
                "ts": listing["ts"],
                "block_id": block_id,
                "action_id": action_id,
                "selected": None,
                "ephemeral": True,
            },
        )
        assert answer == (200, {"ok": True})
        [listing] = [m for m in (await demo.state())["messages"] if m["ephemeral"]]
        assert listing["text"].startswith("Removed") and "Remove" not in str(listing["blocks"])


@pytest.mark.slow
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


@pytest.mark.slow
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
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
async def test_the_demo_command_serves_the_page_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    process = _demo_command(port)
    try:
        first_line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 30)
        assert first_line.strip() == f"Approvals playground: open http://127.0.0.1:{port}/  (Ctrl-C stops it)"
        notice = await asyncio.to_thread(process.stdout.readline)
        assert (
            notice.strip()
            == "storage: in-process Redis (fakeredis); several workers or agent hosts need a real one: set REDIS_URL"
        )
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


@pytest.mark.slow
async def test_a_taken_port_is_a_clear_error(tmp_path):
    async with playground(tmp_path / "work", run_agent=False) as demo:
        port = int(demo.url.rsplit(":", 1)[1])
        process = _demo_command(port)
        _, err = await asyncio.wait_for(asyncio.to_thread(process.communicate), 30)
    assert process.returncode == 2
    assert f"cannot serve the playground on 127.0.0.1:{port}" in err and "--port" in err


# -- the guard: other web sites, rebound names and other people get nothing ------------------------

OLD_PUBLIC_BOT_TOKEN = "xoxb-demo-not-a-real-token"
"""The Slack stand-in's token while it was a constant in the source."""


def _port(demo: Playground) -> int:
    return int(demo.url.rsplit(":", 1)[1])


@pytest.mark.slow
async def test_a_request_naming_another_host_is_refused_everywhere(tmp_path):
    """DNS rebinding: a site's own name resolves to 127.0.0.1, so its script is same-origin with the
    playground; the browser then sends that name as Host."""
    async with playground(tmp_path / "work") as demo:
        click = demo.click_of("U0ALICE", await demo.request(1), "Approve")
        port = _port(demo)
        events = {"payload": json.dumps({"type": "block_actions"})}
        for host in (
            f"rebind.test:{port}",
            "rebind.test",
            f"127.0.0.1:{port + 1}",
            f"127.0.0.1.rebind.test:{port}",
            f"localhost.:{port}",
            f"127.0.0.2:{port}",
        ):
            origin = {"Host": host, "Origin": f"http://{host}"}
            async with demo.session.get(f"{demo.url}/", headers={"Host": host}) as response:
                assert response.status == 421, host
                assert demo.token not in await response.text()
            async with demo.session.get(
                f"{demo.url}/demo/state", headers={**demo.headers, "Host": host}
            ) as response:
                assert response.status == 421
            headers = {**demo.headers, **origin}
            async with demo.session.post(f"{demo.url}/demo/click", json=click, headers=headers) as response:
                assert response.status == 421
                assert await response.json() == {"ok": False, "error": texts.demo.DEMO_WRONG_HOST}
            api = {"Authorization": f"Bearer {demo.demo.bot_token}", "Host": host}
            async with demo.session.post(
                f"{demo.url}/api/chat.postMessage",
                headers=api,
                json={"channel": people.CHANNEL, "text": "forged"},
            ) as response:
                assert response.status == 421
            async with demo.session.post(
                f"{demo.url}/slack/events", data=events, headers={"Host": host}
            ) as response:
                assert response.status == 421
        # HTTP/1.0 needs no Host header: a request that names no host is refused too.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /demo/state?token={demo.token} HTTP/1.0\r\n\r\n".encode())
        assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"HTTP/1.0 421")
        writer.close()
        await writer.wait_closed()
        for host in (f"localhost:{port}", f"[::1]:{port}", f"LOCALHOST:{port}"):
            async with demo.session.get(f"{demo.url}/", headers={"Host": host}) as response:
                assert response.status == 200, host
        await demo.still_undecided(tmp_path / "work")


@pytest.mark.slow
async def test_the_page_api_answers_only_its_own_page(tmp_path):
    """Another site's form or script (the browser says where it comes from) cannot click, read or write."""
    async with playground(tmp_path / "work") as demo:
        click = demo.click_of("U0ALICE", await demo.request(1), "Approve")
        port, own = _port(demo), demo.url
        foreign = [
            {"Origin": "http://attacker.test"},
            {
                "Origin": f"http://127.0.0.1:{port + 1}"
            },  # the same site, another port: another local server's page
            {"Origin": f"http://localhost:{port}"},  # another origin, though the same server
            {"Origin": f"https://127.0.0.1:{port}"},
            {"Origin": "null"},  # sandboxed frames, file: and data: pages
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
            {"Sec-Fetch-Site": "none"},  # only reads may come from the address bar
            {"Referer": "http://attacker.test/cats.html"},
            {"Origin": own, "Sec-Fetch-Site": "cross-site"},
        ]
        for headers in foreign:
            refused = (403, {"ok": False, "error": texts.demo.DEMO_CROSS_SITE})
            assert await demo.post("/demo/click", click, headers) == refused, headers
            status, _ = await demo.post("/demo/post", {"user": "U0ALICE", "text": "from elsewhere"}, headers)
            assert status == 403
        for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://attacker.test"}):
            async with demo.session.get(
                f"{demo.url}/demo/state", headers={**demo.headers, **headers}
            ) as response:
                assert response.status == 403
        # The page's own requests pass: a Cancel of no modal, which changes nothing.
        mine = {"Origin": own, "Sec-Fetch-Site": "same-origin", "Referer": f"{own}/?as=U0BOB"}
        assert await demo.post("/demo/close", {"user": "U0ALICE", "view_id": "V0NONE"}, mine) == (
            200,
            {"ok": True},
        )
        assert (await demo.state())["threads"] == {(await demo.request(1))["ts"]: []}
        await demo.still_undecided(tmp_path / "work")


@pytest.mark.slow
async def test_a_body_that_is_not_json_is_refused_even_when_it_reads_as_json(tmp_path):
    """A form (text/plain can carry a JSON-looking body) or a no-cors fetch skips CORS preflight; JSON cannot."""
    async with playground(tmp_path / "work") as demo:
        click = json.dumps(demo.click_of("U0ALICE", await demo.request(1), "Approve")).encode()
        for content_type in (
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/json-seq",
            None,
        ):
            headers = {**demo.headers, **({"Content-Type": content_type} if content_type else {})}
            async with demo.session.post(f"{demo.url}/demo/click", data=click, headers=headers) as response:
                assert (response.status, await response.json()) == (
                    415,
                    {"ok": False, "error": texts.demo.DEMO_NOT_JSON},
                )
        async with demo.session.post(f"{demo.url}/demo/agent/run", headers=demo.headers) as response:
            assert response.status == 415  # no body at all is not JSON either
        await demo.still_undecided(tmp_path / "work")


@pytest.mark.slow
async def test_the_page_api_needs_the_secret_the_page_carries(tmp_path):
    async with playground(tmp_path / "work") as demo:
        assert len(demo.token) >= 40  # the page carried it; the driver read it from there
        click = demo.click_of("U0ALICE", await demo.request(1), "Approve")
        wrong = (
            {},
            {"X-Playground-Token": ""},
            {"X-Playground-Token": demo.token[:-1]},
            {"X-Playground-Token": demo.token + "x"},
            {"X-Playground-Token": "A" * len(demo.token)},
            {"X-Playground-Token": demo.token.swapcase()},
            {"X-Playground-Token": "é"},
        )
        for headers in wrong:
            async with demo.session.post(f"{demo.url}/demo/click", json=click, headers=headers) as response:
                assert (response.status, await response.json()) == (
                    403,
                    {"ok": False, "error": texts.demo.DEMO_NO_TOKEN},
                )
        # A change carries it in a header, which no form can set; not in its address.
        async with demo.session.post(
            f"{demo.url}/demo/click", json=click, params={"token": demo.token}
        ) as response:
            assert response.status == 403
        # Reads expose everyone's requests: they need it too (the stream, which cannot set headers, in its URL).
        for path in ("/demo/state", "/demo/stream"):
            async with demo.session.get(f"{demo.url}{path}") as response:
                assert response.status == 403
        query = {"token": demo.token, "user": "U0BOB"}
        async with demo.session.get(f"{demo.url}/demo/stream", params=query) as response:
            assert response.status == 200
            async with asyncio.timeout(10):
                line = await response.content.readline()
            assert json.loads(line.removeprefix(b"data: "))["me"] == "U0BOB"
        # Routes the guard does not know need it (fail closed), and a path cannot dress as a bot route.
        async with demo.session.get(f"{demo.url}/demo/nothing-here") as response:
            assert response.status == 403
        async with demo.session.get(f"{demo.url}/demo/nothing-here", headers=demo.headers) as response:
            assert response.status == 404
        async with demo.session.post(
            URL(f"{demo.url}/api/%2e%2e/demo/click", encoded=True), json=click
        ) as response:
            assert response.status in (403, 404)
        await demo.still_undecided(tmp_path / "work")


async def test_the_bot_endpoints_refuse_browsers_and_the_old_public_token(tmp_path):
    async with playground(tmp_path / "work", run_agent=False) as demo:
        api = f"{demo.url}/api/chat.postMessage"
        forged = {"channel": people.CHANNEL, "text": "a request card that shows another command than it runs"}
        old = {"Authorization": f"Bearer {OLD_PUBLIC_BOT_TOKEN}"}
        async with demo.session.post(api, json=forged, headers=old) as response:
            assert (await response.json())["error"] == "invalid_auth"
        real = {"Authorization": f"Bearer {demo.demo.bot_token}"}
        for browser in (
            {"Origin": "http://attacker.test"},
            {"Origin": demo.url},
            {"Sec-Fetch-Site": "same-origin"},
            {"Sec-Fetch-Mode": "no-cors"},
        ):
            async with demo.session.post(api, json=forged, headers={**real, **browser}) as response:
                assert (response.status, await response.json()) == (
                    403,
                    {"ok": False, "error": texts.demo.DEMO_BOT_ONLY},
                )
            # A cross-site form, with the token in its body as Slack's own API would take it.
            form = {"token": demo.demo.bot_token, **forged}
            async with demo.session.post(api, data=form, headers=browser) as response:
                assert response.status == 403
            async with demo.session.post(
                f"{demo.url}/slack/events",
                headers=browser,
                data={"payload": json.dumps({"type": "block_actions"})},
            ) as response:
                assert response.status == 403
            async with demo.session.post(
                f"{demo.url}/demo/response/anything", json={"text": "hi"}, headers=browser
            ) as response:
                assert response.status == 403
        async with demo.session.post(api, data={"token": demo.demo.bot_token, **forged}) as response:
            assert (await response.json())["error"] == "invalid_auth"  # the stand-in reads the header only
        assert (await demo.state())["messages"] == []


async def test_no_other_site_can_frame_the_page_or_keep_a_copy(tmp_path):
    async with playground(tmp_path / "work", run_agent=False) as demo:
        for path, headers in (("/", {}), ("/demo/state", demo.headers), ("/", {"Host": "rebind.test"})):
            async with demo.session.get(f"{demo.url}{path}", headers=headers) as response:
                assert response.headers["X-Frame-Options"] == "DENY"
                assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
                assert response.headers["Cache-Control"] == "no-store"
                assert response.headers["Referrer-Policy"] == "same-origin"


async def test_off_loopback_the_page_itself_needs_the_secret(tmp_path):
    async with playground(
        tmp_path / "work", host="0.0.0.0", allow_hosts=["playground.example"], run_agent=False
    ) as demo:
        port, page_url = _port(demo), demo.demo.page_url
        assert page_url == f"http://{socket.gethostname().lower()}:{port}/?token={demo.token}"
        for query in ("", "?token=", "?token=" + demo.token[:-1]):
            async with demo.session.get(f"{demo.url}/{query}") as response:
                assert response.status == 403
                body = await response.text()
                assert body.strip() == texts.demo.DEMO_PAGE_NEEDS_TOKEN and demo.token not in body
        for host in (f"{socket.gethostname()}:{port}", f"playground.example:{port}", f"127.0.0.1:{port}"):
            assert (
                await page_token(demo.session, f"{demo.url}/?token={demo.token}", {"Host": host})
                == demo.token
            )
        rebound = {"Host": f"rebind.test:{port}"}
        async with demo.session.get(f"{demo.url}/?token={demo.token}", headers=rebound) as response:
            assert response.status == 421


@pytest.mark.slow
async def test_any_loopback_address_serves_the_page_with_its_secret(tmp_path):
    for host in ("127.0.0.2", "::1"):
        async with playground(tmp_path / host.replace(":", "_"), host=host) as demo:
            expected = "http://[::1]:" if host == "::1" else "http://127.0.0.2:"
            assert demo.url.startswith(expected) and demo.demo.page_url == f"{demo.url}/"
            assert demo.token  # the page carried it, no ?token= needed
            await demo.request(1)  # the bot reached its Slack stand-in there and posted
            async with demo.session.get(
                f"{demo.url}/", headers={"Host": f"localhost:{_port(demo)}"}
            ) as response:
                assert response.status == 200


@pytest.mark.slow
async def test_a_shared_host_warns_and_prints_the_address_with_the_secret(tmp_path):
    port = free_port()
    process = _demo_command(port, "--host", "0.0.0.0")
    try:
        first_line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 30)
        async with asyncio.timeout(10):  # the bot's own log lines may come first
            warning = ""
            while not warning.startswith("warning: --host"):
                warning = await asyncio.to_thread(process.stderr.readline)
        found = re.fullmatch(
            rf"Approvals playground: open (http://\S+:{port}/\?token=(\S+))  \(Ctrl-C stops it\)",
            first_line.strip(),
        )
        assert found, first_line
        url, token = found.groups()
        assert warning.strip() == texts.demo.DEMO_EXPOSED.format(host="0.0.0.0", url=url)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/") as response:
                assert response.status == 403
            assert await page_token(session, f"http://127.0.0.1:{port}/?{urlsplit(url).query}") == token
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(asyncio.to_thread(process.wait), 20) == 0
    finally:
        process.kill()
        process.communicate()


# -- Modals belong to the page that opened them (issue 15, item 16) -------------------------------


@pytest.mark.slow
async def test_a_modal_shows_only_on_its_page_and_closes_when_that_page_leaves(tmp_path):
    work = tmp_path / "work"
    async with playground(work) as demo:
        first = await demo.request(1)
        assert (await demo.click("U0ALICE", first, "Deny", client="page-1"))[0] == 200
        view = await demo.open_view("U0ALICE", "page-1")
        # The same page reloaded, or another tab, is another client: nothing to restore there.
        assert (await demo.state("U0ALICE", "page-2"))["view"] is None
        assert (await demo.state("U0ALICE"))["view"] is None

        assert await demo.post("/demo/leave", {"user": "U0ALICE", "client": "page-1"}) == (200, {"ok": True})
        assert (await demo.state("U0ALICE", "page-1"))["view"] is None
        assert demo.demo.workspace.views == {}
        reason = {"reason": {"reason_input": "too late"}}
        assert (await demo.submit("U0ALICE", view, reason))[0] == 404
        for bad in ("../x", "a" * 65, 7):
            status, _ = await demo.post("/demo/leave", {"user": "U0ALICE", "client": bad})
            assert status == 400
        await demo.still_undecided(work)


@pytest.mark.slow
async def test_a_page_whose_stream_ends_takes_its_modals_with_it(tmp_path):
    async with playground(tmp_path / "work") as demo:
        first = await demo.request(1)
        stream = await demo.session.get(
            f"{demo.url}/demo/stream", params={"user": "U0BOB", "client": "tab-1"}, headers=demo.headers
        )
        assert (await stream.content.readline()).startswith(b"data: ")
        await demo.click("U0BOB", first, "Modify", client="tab-1")
        await demo.open_view("U0BOB", "tab-1")
        stream.close()  # the tab is closed, or reloaded: no goodbye is said
        workspace = demo.demo.workspace
        async with asyncio.timeout(10):
            while workspace.views:
                workspace.touch()  # the next change written to the page finds it gone
                await asyncio.sleep(0.05)
        assert (await demo.state("U0BOB", "tab-1"))["view"] is None
        assert "[allowed]" not in demo.out.getvalue()


async def test_closing_a_modal_that_asked_for_it_sends_view_closed(tmp_path):
    """Slack's ``view_closed``, signed, for a view opened with ``notify_on_close``: on Cancel and when its page goes."""
    secret = "closing-secret"
    verifier = SignatureVerifier(secret)
    received: list[dict] = []

    async def events(request: web.Request) -> web.Response:
        body = await request.text()
        assert verifier.is_valid_request(body, dict(request.headers))
        received.append(json.loads(dict(parse_qsl(body))["payload"]))
        return web.Response()

    app = web.Application()
    app.router.add_post("/slack/events", events)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    workspace = Workspace()
    interactions = Interactions(workspace, f"http://127.0.0.1:{port}", secret)
    modal = {
        "type": "modal",
        "callback_id": "approval.deny_modal",
        "private_metadata": "meta",
        "title": {"type": "plain_text", "text": "Deny request"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Why?"}}],
    }
    try:
        cancelled = workspace.open_view(
            workspace.issue_trigger("U0ALICE", "page-1"), {**modal, "notify_on_close": True}
        )
        await interactions.close_view("U0ALICE", cancelled["id"])
        quiet = workspace.open_view(workspace.issue_trigger("U0ALICE", "page-1"), modal)
        await interactions.close_view("U0ALICE", quiet["id"])  # did not ask: Slack says nothing
        left = workspace.open_view(
            workspace.issue_trigger("U0BOB", "page-2"), {**modal, "notify_on_close": True}
        )
        await interactions.leave("U0BOB", "page-2")
    finally:
        await interactions.aclose()
        await runner.cleanup()

    assert workspace.views == {}
    assert [(p["type"], p["user"]["id"], p["view"]["id"]) for p in received] == [
        ("view_closed", "U0ALICE", cancelled["id"]),
        ("view_closed", "U0BOB", left["id"]),
    ]
    first = received[0]
    assert first["is_cleared"] is False and first["team"]["id"] == people.TEAM_ID
    assert (first["view"]["callback_id"], first["view"]["private_metadata"]) == (
        "approval.deny_modal",
        "meta",
    )


# -- What people type (issue 15, item 20) ---------------------------------------------------------


async def test_an_unknown_command_is_answered_by_slackbot_and_posts_nothing(tmp_path):
    async with playground(tmp_path / "work", run_agent=False) as demo:
        for typed in ("/foo bar", "/tmp/build is full"):
            assert await demo.post("/demo/post", {"user": "U0BOB", "text": typed}) == (200, {"ok": True})
        # A leading space is how one posts a message that starts with "/".
        assert await demo.post("/demo/post", {"user": "U0BOB", "text": " /foo, as text"}) == (
            200,
            {"ok": True},
        )
        shown = (await demo.state("U0BOB"))["messages"]
        notes = [m for m in shown if m["ephemeral"]]
        assert [m["user"] for m in notes] == [people.SLACKBOT_ID] * 2 and not any(m["bot"] for m in notes)
        assert notes[0]["text"].startswith("/foo is not a command here, so nothing was posted.")
        assert notes[1]["text"].startswith("/tmp/build is not a command")
        assert [m["text"] for m in shown if not m["ephemeral"]] == ["/foo, as text"]
        assert [m for m in (await demo.state("U0ALICE"))["messages"] if m["ephemeral"]] == []
        assert (await demo.state("U0BOB"))["users"][people.SLACKBOT_ID] == "Slackbot"


async def test_a_hostile_unknown_command_stays_text(tmp_path):
    async with playground(tmp_path / "work", run_agent=False) as demo:
        await demo.post("/demo/post", {"user": "U0BOB", "text": "/<!channel>&<@U0ALICE>"})
        [note] = [m for m in (await demo.state("U0BOB"))["messages"] if m["ephemeral"]]
        assert note["text"].startswith("/&lt;!channel&gt;&amp;&lt;@U0ALICE&gt; is not a command")


# -- A one-question request in the playground (issue 15, item 21) --------------------------------


@pytest.mark.slow
async def test_the_playgrounds_single_question_is_answered_from_its_menu(tmp_path):
    async with playground(tmp_path / "work") as demo:
        for number, label in ((1, "Approve"), (2, "Approve")):
            await demo.click("U0ALICE", await demo.request(number), label)
        third = await demo.request(3)
        await demo.click("U0ALICE", third, "Approve")
        await demo.click("U0BOB", third, "Approve")
        question = await demo.request(4)
        [(block_id, menu)] = [
            (b["block_id"], e)
            for b in question["blocks"]
            for e in b.get("elements", [])
            if e["type"] == "static_select"
        ]
        pick = {"user": "U0BOB", "ts": question["ts"], "block_id": block_id, "action_id": menu["action_id"]}
        # Only what the menu offers can be picked.
        status, answer = await demo.post("/demo/click", {**pick, "selected": "5"})
        assert (status, answer["error"]) == (400, "no such option: '5'")
        assert await demo.click("U0BOB", question, "Other…", client="tab") == (200, {"ok": True})
        form = await demo.open_view("U0BOB", "tab")
        assert form["title"]["text"] == "Answer the agent"
        assert await demo.post("/demo/close", {"user": "U0BOB", "view_id": form["id"]}) == (200, {"ok": True})
        assert await demo.post("/demo/click", {**pick, "selected": "1"}) == (200, {"ok": True})
        out = await demo.said("[answered]")
        assert "Which version should I tag? → v2.4.0" in out
        assert "AskUserQuestion: 1 question: Which version should I tag?" in out


@pytest.mark.slow
async def test_deny_and_stop_ends_the_agents_run_and_the_page_says_so(tmp_path):
    async with playground(tmp_path / "work") as demo:
        first = await demo.request(1)
        assert (await demo.click("U0ALICE", first, "Deny and stop"))[0] == 200
        view = await demo.open_view("U0ALICE")
        assert view["title"]["text"] == "Deny and stop"
        assert await demo.submit("U0ALICE", view, {"reason": {"reason_input": "enough"}}) == (
            200,
            {"ok": True},
        )
        out = await demo.said("The agent finished")
        assert "someone chose Deny and stop" in out and "stopped with an error" not in out
        assert (
            len([m for m in (await demo.state())["messages"] if not m["ephemeral"]]) == 1
        )  # nothing asked after
        assert not (tmp_path / "work" / "hello.txt").exists()
