"""The fake refuses what Slack refuses about time, use and membership: expired and spent
triggers, a ``response_url`` past its uses, updates of what the bot cannot edit, reads and
ephemerals where the bot or the person is not in the channel."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_payload_parts import trigger_id
from tests.fakes.slack_rules import RESPONSE_URL_TTL, RESPONSE_URL_USES

CHANNEL = "C0APPROVALS"
MODAL = {
    "type": "modal",
    "callback_id": "notice",
    "title": {"type": "plain_text", "text": "Notice"},
    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}],
}


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack.start() as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return slack.client()


async def _error(call) -> str:
    with pytest.raises(SlackApiError) as raised:
        await call
    return raised.value.response["error"]


async def test_a_trigger_opens_one_view_within_three_seconds_of_the_click(slack, client):
    fresh = trigger_id()
    await client.views_open(trigger_id=fresh, view=MODAL)
    assert await _error(client.views_open(trigger_id=fresh, view=MODAL)) == "exchanged_trigger_id"
    # Minted 3.5 s ago: the click's 3 s are over (the clock, not a sleep, moves on).
    assert (
        await _error(client.views_open(trigger_id=trigger_id(time.time() - 3.5), view=MODAL))
        == "expired_trigger_id"
    )
    late = trigger_id()
    slack.clock = lambda: time.time() + 3.5
    assert await _error(client.views_open(trigger_id=late, view=MODAL)) == "expired_trigger_id"
    assert await _error(client.views_open(trigger_id="not-a-trigger", view=MODAL)) == "invalid_trigger_id"


async def test_a_response_url_answers_five_times_within_thirty_minutes(slack, client):
    posted = await client.chat_postMessage(channel=CHANNEL, text="listing")
    url = slack.response_url(CHANNEL, posted["ts"])
    async with aiohttp.ClientSession() as session:
        for n in range(RESPONSE_URL_USES):
            async with session.post(url, json={"replace_original": True, "text": f"v{n}"}) as response:
                assert response.status == 200
        async with session.post(url, json={"replace_original": True, "text": "sixth"}) as response:
            assert (response.status, await response.text()) == (404, "used_url")
        assert slack.message(CHANNEL, posted["ts"]).text == f"v{RESPONSE_URL_USES - 1}"

        later = slack.response_url(CHANNEL, posted["ts"])
        slack.clock = lambda: time.time() + RESPONSE_URL_TTL + 1
        async with session.post(later, json={"replace_original": True, "text": "late"}) as response:
            assert (response.status, await response.text()) == (404, "expired_url")


async def test_an_ephemeral_is_replaced_through_its_response_url_only(slack, client):
    shown = slack.show_ephemeral(CHANNEL, "U0ALICE", "rules", [])
    assert (
        await _error(client.chat_update(channel=CHANNEL, ts=shown.message_ts, text="x"))
        == "cant_update_message"
    )
    async with aiohttp.ClientSession() as session:
        url = slack.response_url(CHANNEL, shown.message_ts)
        async with session.post(
            url, json={"replace_original": True, "text": "rules, one removed"}
        ) as response:
            assert response.status == 200
    assert [e.text for e in slack.ephemerals] == ["rules, one removed"]


async def test_the_bot_updates_only_its_own_messages(slack, client):
    theirs = slack.reply(CHANNEL, "1700000000.000100", "U0ALICE", "hello")
    assert (
        await _error(client.chat_update(channel=CHANNEL, ts=theirs.ts, text="edited"))
        == "cant_update_message"
    )
    assert slack.message(CHANNEL, theirs.ts).text == "hello"


async def test_threads_and_ephemerals_need_the_channels_members(slack, client):
    slack.add_channel("C0SMALL", "small", members=["U0ALICE"])
    posted = await client.chat_postMessage(channel="C0SMALL", text="root")
    await client.chat_postEphemeral(channel="C0SMALL", user="U0ALICE", text="only alice")
    assert (
        await _error(client.chat_postEphemeral(channel="C0SMALL", user="U0BOB", text="x"))
        == "user_not_in_channel"
    )
    await client.conversations_replies(channel="C0SMALL", ts=posted["ts"])

    slack.channels["C0SMALL"].is_member = False  # the bot was removed
    assert await _error(client.conversations_replies(channel="C0SMALL", ts=posted["ts"])) == "not_in_channel"
    # Channels made without a member list hold everyone, so other tests are unaffected.
    await client.chat_postEphemeral(channel=CHANNEL, user="U0ANYONE", text="hi")
