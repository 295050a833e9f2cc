"""Hostile and broken input: forged requests, malformed payloads, hostile tool input."""

from __future__ import annotations

import asyncio
import time

from bot.approvals.names import AuditEvent
from bot.slack import limits
from bot.slack.ids import Action
from tests.audit_streams import audit_length, audit_stream
from tests.conftest import cancelled, context, posted
from tests.fakes.slack_block_actions import block_actions
from tests.fakes.slack_signing import sign, signed_form


async def _decisions(redis) -> list[bytes]:
    return [
        f[b"event"]
        for _id, f in await audit_stream(redis)
        if f[b"event"] not in (b"created", AuditEvent.GENESIS.encode())
    ]


async def _pending_request(make_approver, slack, tool_use_id: str = "toolu_target"):
    approver = await make_approver()
    task = asyncio.create_task(approver.can_use_tool("Bash", {"command": "deploy"}, context(tool_use_id)))
    return task, await posted(slack)


def _approve_payload(message) -> dict:
    value = next(e["value"] for b in message.blocks if b["type"] == "actions" for e in b["elements"])
    return block_actions(
        "U_MALLORY", Action.APPROVE.value, value, message=message.as_dict(), channel=message.channel
    )


async def test_forged_stale_or_unsigned_clicks_get_401_and_change_nothing(
    start_worker, make_approver, slack, redis
):
    worker = await start_worker()
    task, message = await _pending_request(make_approver, slack)
    payload = _approve_payload(message)

    forged = await worker.post_signed(payload, secret="not-the-secret")
    stale = await worker.post_signed(payload, timestamp=int(time.time()) - 6 * 60)
    body, headers = signed_form(payload, "test-signing-secret")
    async with worker.session.post(
        f"{worker.url}/slack/events", data=body, headers={"Content-Type": headers["Content-Type"]}
    ) as unsigned:
        pass
    tampered_body = body.replace(b"U_MALLORY", b"U_ALICE00")
    async with worker.session.post(
        f"{worker.url}/slack/events", data=tampered_body, headers=headers
    ) as tampered:
        pass

    assert [forged.status, stale.status, unsigned.status, tampered.status] == [401, 401, 401, 401]
    await asyncio.sleep(0.2)
    assert await _decisions(redis) == [b"posted"]
    assert not task.done()
    await cancelled(task)


async def test_malformed_signed_requests_get_400(start_worker, slack, redis):
    worker = await start_worker()
    secret = "test-signing-secret"
    cases = {
        "payload=%7Bnot+json": "application/x-www-form-urlencoded",
        "payload=%5B1%2C2%5D": "application/x-www-form-urlencoded",
        "nothing=here": "application/x-www-form-urlencoded",
        "{not json": "application/json",
        '{"no": "type"}': "application/json",
        "<xml/>": "text/xml",
    }
    for raw, content_type in cases.items():
        body = raw.encode()
        headers = {**sign(body, secret), "Content-Type": content_type}
        async with worker.session.post(f"{worker.url}/slack/events", data=body, headers=headers) as response:
            assert response.status == 400, raw
    body = b"payload=\xff\xfe"
    async with worker.session.post(
        f"{worker.url}/slack/events",
        data=body,
        headers={**sign(body, secret), "Content-Type": "application/x-www-form-urlencoded"},
    ) as response:
        assert response.status == 400
    # Well-formed JSON, but not the shape of a click: acked, ignored.
    bad_shape = block_actions("U1", Action.APPROVE.value, "../../etc/passwd")
    assert (await worker.post_signed(bad_shape)).status == 200
    assert await audit_length(redis) == 0
    # The worker is still fine.
    async with worker.session.get(f"{worker.url}/healthz") as health:
        assert health.status == 200


async def test_unknown_request_id_is_answered_privately(start_worker, slack, redis):
    worker = await start_worker()
    payload = block_actions("U_ALICE", Action.APPROVE.value, "0" * 24)
    assert (await worker.post_signed(payload)).status == 200
    call = await slack.wait_for_call("chat.postEphemeral")
    assert call.args["user"] == "U_ALICE" and "no longer exists" in call.args["text"]
    assert await audit_length(redis) == 0


def _text_objects(value):
    if isinstance(value, dict):
        if value.get("type") in ("mrkdwn", "plain_text") and isinstance(value.get("text"), str):
            yield value
        for child in value.values():
            yield from _text_objects(child)
    elif isinstance(value, list):
        for child in value:
            yield from _text_objects(child)


HOSTILE = (
    "<!channel> <!here> <!everyone> <@U0ADMIN> <!subteam^S0ONCALL|@oncall> <https://evil.example|click me>\n"
    "```\n*bold* _it_ ~strike~ `tick` ```` & &amp; \x00\x07\x1b[31m \ud800 ✓ 🚀\n"
)


async def test_hostile_tool_input_pings_nobody_and_keeps_the_layout(start_worker, make_approver, slack):
    await start_worker()
    approver = await make_approver(agent_name="<!channel> agent")
    tool_input = {"command": HOSTILE, "description": HOSTILE}
    task = asyncio.create_task(approver.can_use_tool("Bash", tool_input, context("toolu_hostile")))
    message = await posted(slack)

    # Slack parses mentions and links only in mrkdwn (plain_text is literal):
    # none of the input's may survive there.
    mrkdwn = [o["text"] for o in _text_objects(message.blocks) if o["type"] == "mrkdwn"]
    for raw in ("<!channel>", "<!here>", "<!everyone>", "<@U0ADMIN>", "<!subteam^", "<https://evil"):
        assert not any(raw in m for m in mrkdwn), raw
    assert any("&lt;!channel&gt;" in m for m in mrkdwn), "the input is still shown, escaped"
    code_sections = [
        b["text"]["text"] for b in message.blocks if b["type"] == "section" and "```" in b["text"]["text"]
    ]
    assert code_sections, "the command is shown as code"
    for section in code_sections:
        assert section.count("```") == 2, "the input closed our code block"
    assert "<!channel>" not in message.text and "<@" not in message.text
    await cancelled(task)


async def test_huge_input_is_cut_with_a_marker_and_viewable_in_full(start_worker, make_approver, slack):
    worker = await start_worker()
    approver = await make_approver()
    content = "".join(f"line {i:06d}\n" for i in range(20_000))  # 240 KB
    task = asyncio.create_task(
        approver.can_use_tool(
            "Write", {"file_path": "/tmp/big.txt", "content": content}, context("toolu_big")
        )
    )
    message = await posted(slack)

    sections = [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    assert all(len(s) <= limits.SECTION_TEXT for s in sections)
    assert any("more characters" in s for s in sections)
    assert "line 000000" in "".join(sections)

    await worker.click("U_ALICE", Action.VIEW_INPUT, message)
    update = await slack.wait_for_call("views.update")
    shown = "".join(b["text"]["text"] for b in update.args["view"]["blocks"] if b["type"] == "section")
    # Far more than the message shows, in order; the rest is on the next pages
    # (tests/test_full_input_pages.py turns them).
    assert "line 000000" in shown and "line 005000" in shown
    assert "Next page" in str(update.args["view"]["blocks"][-1])
    # Looking changed nothing.
    assert task.done() is False
    await cancelled(task)


async def test_healthz_reports_redis(start_worker, redis_server):
    healthy = await start_worker()
    async with healthy.session.get(f"{healthy.url}/healthz") as response:
        assert response.status == 200
    from tests.fakes.redis_server import free_port

    broken = await start_worker(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with broken.session.get(f"{broken.url}/healthz") as response:
        assert response.status == 503
        assert (await response.json())["ok"] is False
