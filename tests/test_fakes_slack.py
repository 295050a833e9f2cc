"""Tests of the Slack fakes themselves, through the real slack_sdk / Bolt clients."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.block_kit_check import message_blocks_errors, view_errors
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_block_actions import block_actions
from tests.fakes.slack_payload_parts import trigger_id
from tests.fakes.slack_records import FIRST_TS
from tests.fakes.slack_signing import signed_form, signed_json
from tests.fakes.slack_view_payloads import view_submission

CHANNEL = "C0APPROVALS"
SECRET = "test-signing-secret"


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def button(action_id: str, text: str = "Approve", value: str = "req-1") -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "text": plain(text), "value": value}


def request_blocks(state: str = "pending") -> list[dict[str, Any]]:
    return [
        {"type": "header", "text": plain("Approval needed")},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Bash* `ls` — {state}"}},
        {"type": "actions", "block_id": "decide", "elements": [button("approve"), button("deny", "Deny")]},
    ]


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack.start() as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return slack.client()


# -- messages ----------------------------------------------------------------- #


async def test_post_then_update_changes_what_slack_shows(slack: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="Approve?", blocks=request_blocks())
    assert abs(float(posted["ts"]) - time.time()) < 60 and posted["channel"] == CHANNEL
    assert posted["message"]["blocks"] == request_blocks()

    done = [{"type": "section", "text": {"type": "mrkdwn", "text": "Approved by <@U1>"}}]
    await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="Approved", blocks=done)

    shown = slack.message(CHANNEL, posted["ts"])
    assert (shown.text, shown.blocks, shown.edits) == ("Approved", done, 1)
    # Arguments are recorded decoded, blocks as Python objects, without the token.
    assert [c.method for c in slack.calls] == ["chat.postMessage", "chat.update"]
    update = slack.calls_to("chat.update")[0]
    assert update.args == {"channel": CHANNEL, "ts": posted["ts"], "text": "Approved", "blocks": done}
    assert slack.invalid == []


async def test_update_keeps_fields_it_does_not_mention(slack: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="Approve?", blocks=request_blocks())
    await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="Still pending")
    assert slack.message(CHANNEL, posted["ts"]).blocks == request_blocks()


async def test_timestamps_increase_and_threads_are_kept(slack: FakeSlack, client: AsyncWebClient) -> None:
    first = await client.chat_postMessage(channel=CHANNEL, text="one")
    reply = await client.chat_postMessage(channel=CHANNEL, text="two", thread_ts=first["ts"])
    assert float(reply["ts"]) > float(first["ts"])
    assert slack.message(CHANNEL, reply["ts"]).thread_ts == first["ts"]


async def test_state_errors_are_slacks(slack: FakeSlack, client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as unknown_channel:
        await client.chat_postMessage(channel="C0NOPE", text="x")
    with pytest.raises(SlackApiError) as unknown_message:
        await client.chat_update(channel=CHANNEL, ts="1.000000", text="x")
    with pytest.raises(SlackApiError) as unknown_method:
        await client.api_call("chat.frobnicate")
    assert unknown_channel.value.response["error"] == "channel_not_found"
    assert unknown_message.value.response["error"] == "message_not_found"
    assert unknown_method.value.response["error"] == "unknown_method"


async def test_delete_removes_the_message(slack: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="x")
    await client.chat_delete(channel=CHANNEL, ts=posted["ts"])
    assert slack.messages == {}
    with pytest.raises(SlackApiError) as again:
        await client.chat_delete(channel=CHANNEL, ts=posted["ts"])
    assert again.value.response["error"] == "message_not_found"


async def test_channel_membership_and_info(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.add_channel("C0OTHER", "other", is_member=False)
    info = await client.conversations_info(channel=CHANNEL)
    assert info["channel"]["id"] == CHANNEL and info["channel"]["name"] == "approvals"
    with pytest.raises(SlackApiError) as not_member:
        await client.chat_postMessage(channel="C0OTHER", text="x")
    assert not_member.value.response["error"] == "not_in_channel"


async def test_auth_is_checked(slack: FakeSlack) -> None:
    assert (await slack.client().auth_test())["user_id"] == "U0BOT"
    with pytest.raises(SlackApiError) as wrong:
        await slack.client(token="xoxb-wrong").auth_test()
    with pytest.raises(SlackApiError) as missing:
        await slack.client(token=None).auth_test()
    assert wrong.value.response["error"] == "invalid_auth"
    assert missing.value.response["error"] == "not_authed"


async def test_users_info(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.add_user("U0ALICE", "alice", real_name="Alice A")
    assert (await client.users_info(user="U0ALICE"))["user"]["real_name"] == "Alice A"
    with pytest.raises(SlackApiError) as missing:
        await client.users_info(user="nobody")
    assert missing.value.response["error"] == "user_not_found"


async def test_ephemeral(slack: FakeSlack, client: AsyncWebClient) -> None:
    answer = await client.chat_postEphemeral(channel=CHANNEL, user="U0ALICE", text="only you")
    assert slack.ephemerals[0].message_ts == answer["message_ts"]
    assert slack.ephemerals[0].user == "U0ALICE"


# -- validation --------------------------------------------------------------- #


INVALID_BLOCKS = {
    "section text 3001": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
    "header 151": [{"type": "header", "text": plain("x" * 151)}],
    "button text 76": [{"type": "actions", "elements": [button("approve", text="x" * 76)]}],
    "button value 2001": [{"type": "actions", "elements": [button("approve", value="x" * 2001)]}],
    "action_id 256": [{"type": "actions", "elements": [button("x" * 256)]}],
    "context 11 elements": [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
    "51 blocks": [{"type": "divider"}] * 51,
    "unknown block type": [{"type": "sparkles"}],
    "mrkdwn header": [{"type": "header", "text": {"type": "mrkdwn", "text": "*h*"}}],
    "duplicate action_id": [{"type": "actions", "elements": [button("approve"), button("approve")]}],
}


@pytest.mark.parametrize("blocks", INVALID_BLOCKS.values(), ids=INVALID_BLOCKS.keys())
async def test_invalid_blocks_are_rejected(
    slack: FakeSlack, client: AsyncWebClient, blocks: list[dict[str, Any]]
) -> None:
    with pytest.raises(SlackApiError) as rejected:
        await client.chat_postMessage(channel=CHANNEL, text="x", blocks=blocks)
    assert rejected.value.response["error"] == "invalid_blocks"
    assert rejected.value.response["errors"]
    assert [i.error for i in slack.invalid] == ["invalid_blocks"]
    assert slack.messages == {}


async def test_limits_are_inclusive(slack: FakeSlack, client: AsyncWebClient) -> None:
    blocks = [
        {"type": "header", "text": plain("x" * 150)},
        {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3000}},
        {"type": "actions", "elements": [button("approve", text="x" * 75, value="v" * 2000)]},
    ]
    assert message_blocks_errors(blocks) == []
    await client.chat_postMessage(channel=CHANNEL, text="x", blocks=blocks)
    assert slack.invalid == []


async def test_invalid_update_leaves_message_alone(slack: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="Approve?", blocks=request_blocks())
    too_long_header = [{"type": "header", "text": plain("x" * 151)}]
    with pytest.raises(SlackApiError):
        await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="x", blocks=too_long_header)
    assert slack.message(CHANNEL, posted["ts"]).blocks == request_blocks()


async def test_text_limits(slack: FakeSlack, client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as too_long:
        await client.chat_postMessage(channel=CHANNEL, text="x" * 40_001)
    assert too_long.value.response["error"] == "msg_too_long"


# -- views -------------------------------------------------------------------- #


def deny_modal(**overrides: Any) -> dict[str, Any]:
    view = {
        "type": "modal",
        "callback_id": "deny_reason",
        "private_metadata": "req-1",
        "title": plain("Deny request"),
        "submit": plain("Deny"),
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": plain("Why?"),
                "element": {"type": "plain_text_input", "action_id": "text"},
            }
        ],
    }
    return view | overrides


async def test_views_open_and_update(slack: FakeSlack, client: AsyncWebClient) -> None:
    trigger = trigger_id()
    opened = await client.views_open(trigger_id=trigger, view=deny_modal())
    view_id = opened["view"]["id"]
    assert view_id.startswith("V") and opened["view"]["callback_id"] == "deny_reason"

    updated = await client.views_update(view_id=view_id, view=deny_modal(title=plain("Deny (2)")))
    assert slack.views[view_id]["title"] == plain("Deny (2)")
    assert updated["view"]["hash"] != opened["view"]["hash"]

    with pytest.raises(SlackApiError) as stale:
        await client.views_update(view_id=view_id, hash=opened["view"]["hash"], view=deny_modal())
    with pytest.raises(SlackApiError) as reused:
        await client.views_open(trigger_id=trigger, view=deny_modal())
    assert stale.value.response["error"] == "hash_conflict"
    assert reused.value.response["error"] == "exchanged_trigger_id"

    pushed = await client.views_push(trigger_id=trigger_id(), view=deny_modal(callback_id="confirm"))
    assert slack.views[pushed["view"]["id"]]["callback_id"] == "confirm"


async def test_invalid_views_are_rejected(slack: FakeSlack, client: AsyncWebClient) -> None:
    assert view_errors(deny_modal()) == []
    with pytest.raises(SlackApiError) as no_trigger:
        await client.views_open(trigger_id="", view=deny_modal())
    with pytest.raises(SlackApiError) as long_title:
        await client.views_open(trigger_id=trigger_id(), view=deny_modal(title=plain("x" * 25)))
    with pytest.raises(SlackApiError) as no_submit:
        await client.views_open(trigger_id=trigger_id(), view=deny_modal(submit=None))
    for rejected in (no_trigger, long_title, no_submit):
        assert rejected.value.response["error"] == "invalid_arguments"
    assert len(slack.invalid) == 3


# -- injected failures -------------------------------------------------------- #


async def test_rate_limit_is_retried_by_the_sdk_handler(slack: FakeSlack) -> None:
    client = slack.client(retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    # retry_after=0 keeps the test fast; the handler still sleeps up to 1 s of jitter.
    slack.rate_limit("chat.postMessage", retry_after=0, times=1)
    posted = await client.chat_postMessage(channel=CHANNEL, text="hi")
    assert posted["ok"]
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]
    assert len(slack.messages) == 1


async def test_rate_limit_without_retry_raises(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.rate_limit("chat.update", retry_after=7)
    with pytest.raises(SlackApiError) as limited:
        await client.chat_update(channel=CHANNEL, ts=FIRST_TS, text="x")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"
    assert limited.value.response["error"] == "ratelimited"


async def test_fail_and_server_error_then_recover(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.fail("chat.postMessage", error="channel_not_found")
    slack.server_error("chat.postMessage", status=503)
    with pytest.raises(SlackApiError) as failed:
        await client.chat_postMessage(channel=CHANNEL, text="x")
    with pytest.raises(SlackApiError) as unavailable:
        await client.chat_postMessage(channel=CHANNEL, text="x")
    assert failed.value.response["error"] == "channel_not_found"
    assert unavailable.value.response.status_code == 503
    assert (await client.chat_postMessage(channel=CHANNEL, text="x"))["ok"]


# -- waiting ------------------------------------------------------------------ #


async def test_wait_for_wakes_on_calls(slack: FakeSlack, client: AsyncWebClient) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        await client.chat_postMessage(channel=CHANNEL, text="late")

    task = asyncio.create_task(later())
    call = await slack.wait_for_call("chat.postMessage", timeout=5)
    await task
    assert call.args["text"] == "late"


async def test_wait_for_times_out_with_context(slack: FakeSlack, client: AsyncWebClient) -> None:
    await client.auth_test()
    with pytest.raises(TimeoutError, match="auth.test"):
        await slack.wait_for(lambda: slack.calls_to("chat.update"), timeout=0.05)


# -- payloads and signatures --------------------------------------------------- #


def test_signed_form_is_accepted_by_the_sdk_verifier() -> None:
    body, headers = signed_form(block_actions("U0ALICE", "approve", "req-1"), SECRET)
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid_request(body, headers)
    assert not verifier.is_valid_request(body.replace(b"approve", b"approvE"), headers)
    assert not SignatureVerifier("other-secret").is_valid_request(body, headers)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert json.loads(parse_qs(body.decode())["payload"][0])["actions"][0]["value"] == "req-1"


def test_signed_json_is_accepted_by_the_sdk_verifier() -> None:
    event = {"type": "event_callback", "team_id": "T0TEAM", "event": {"type": "app_mention", "text": "hi"}}
    body, headers = signed_json(event, SECRET)
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert not SignatureVerifier(SECRET).is_valid_request(body + b" ", headers)


def test_old_timestamps_are_rejected_by_the_verifier() -> None:
    body, headers = signed_form(block_actions("U0ALICE", "approve", "req-1"), SECRET, timestamp=1_000_000_000)
    assert not SignatureVerifier(SECRET).is_valid_request(body, headers)


async def test_block_actions_from_a_posted_message(slack: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="Approve?", blocks=request_blocks())
    message = slack.message(CHANNEL, posted["ts"]).as_dict()
    payload = block_actions("U0ALICE", "deny", "req-1", message=message)
    assert payload["actions"][0]["block_id"] == "decide"
    assert payload["actions"][0]["text"] == plain("Deny")
    assert payload["container"]["message_ts"] == posted["ts"]
    with pytest.raises(ValueError, match="no element"):
        block_actions("U0ALICE", "escalate", "req-1", message=message)


def test_view_submission_checks_inputs_against_the_view() -> None:
    view = {"id": "V1", **deny_modal()}
    payload = view_submission("U0ALICE", "deny_reason", "req-1", {"reason": {"text": "too risky"}}, view=view)
    assert payload["view"]["state"]["values"]["reason"]["text"] == {
        "type": "plain_text_input",
        "value": "too risky",
    }
    assert payload["view"]["id"] == "V1"
    with pytest.raises(ValueError, match="no input"):
        view_submission("U0ALICE", "deny_reason", "req-1", {"reason": {"typo": "x"}}, view=view)


async def test_bolt_routes_the_payloads_and_its_client_reaches_the_fake(slack: FakeSlack) -> None:
    """End to end: Bolt verifies the signature, routes by action_id/callback_id, and calls the fake."""
    app = AsyncApp(client=slack.client(), signing_secret=SECRET)
    seen: list[str] = []

    @app.action("approve")
    async def on_approve(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        seen.append(f"{body['user']['id']}:{body['actions'][0]['value']}")
        await client.chat_update(
            channel=body["channel"]["id"], ts=body["message"]["ts"], text="Approved", blocks=[]
        )

    @app.view("deny_reason")
    async def on_deny(ack: AsyncAck, view: dict[str, Any]) -> None:
        await ack()
        seen.append(view["private_metadata"] + ":" + view["state"]["values"]["reason"]["text"]["value"])

    posted = await slack.client().chat_postMessage(channel=CHANNEL, text="Approve?", blocks=request_blocks())
    click = block_actions(
        "U0ALICE", "approve", "req-1", message=slack.message(CHANNEL, posted["ts"]).as_dict()
    )
    submit = view_submission("U0BOB", "deny_reason", "req-2", {"reason": {"text": "nope"}})
    for payload in (click, submit):
        body, headers = signed_form(payload, SECRET)
        response = await app.async_dispatch(AsyncBoltRequest(body=body.decode(), headers=headers))
        assert response.status == 200

    await slack.wait_for(lambda: slack.message(CHANNEL, posted["ts"]).text == "Approved")
    assert seen == ["U0ALICE:req-1", "req-2:nope"]

    # Another body under the click's signature: Bolt must refuse it.
    _, click_headers = signed_form(click, SECRET)
    other_body, _ = signed_form(block_actions("U0MALLORY", "approve", "req-1"), SECRET)
    response = await app.async_dispatch(AsyncBoltRequest(body=other_body.decode(), headers=click_headers))
    assert response.status == 401
    assert seen == ["U0ALICE:req-1", "req-2:nope"]


async def test_response_url_replaces_the_original(slack: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="Approve?", blocks=request_blocks())
    url = slack.response_url(CHANNEL, posted["ts"])
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"replace_original": True, "text": "Denied"}) as resp:
            assert resp.status == 200
    shown = slack.message(CHANNEL, posted["ts"])
    assert (shown.text, shown.blocks) == ("Denied", [])
    assert slack.calls_to("response_url")[0].args["text"] == "Denied"
