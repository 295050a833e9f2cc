"""The fake Slack refuses what Slack refuses: a message's total text, context text, options,
checkboxes, text inputs and view size (issue 15, item 15). Each limit is tried on both sides."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.block_kit_check import message_blocks_errors, view_errors
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_payload_parts import trigger_id

CHANNEL = "C0APPROVALS"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack.start() as fake:
        yield fake


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def option(text: str = "a", description: str | None = None, value: str = "0") -> dict[str, Any]:
    made = {"text": plain(text), "value": value}
    if description is not None:
        made["description"] = plain(description)
    return made


def form(element: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "c",
        "title": plain("T"),
        "submit": plain("Send"),
        "blocks": [
            {"type": "input", "block_id": "b", "label": plain("L"), "element": {"action_id": "a", **element}}
        ],
    }


async def test_a_message_over_the_total_text_budget_is_refused_as_slack_does(slack: FakeSlack) -> None:
    client: AsyncWebClient = slack.client()
    fits = [section("x" * 3_000)] * 4  # 12,000
    await client.chat_postMessage(channel=CHANNEL, text="x", blocks=fits)
    too_long = fits + [section("x")]
    assert message_blocks_errors(too_long)
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel=CHANNEL, text="x", blocks=too_long)
    assert refused.value.response["error"] == "msg_blocks_too_long"
    posted = next(iter(slack.messages.values()))
    with pytest.raises(SlackApiError) as refused_update:
        await client.chat_update(channel=CHANNEL, ts=posted.ts, text="x", blocks=too_long)
    assert refused_update.value.response["error"] == "msg_blocks_too_long"
    assert [i.error for i in slack.invalid] == ["msg_blocks_too_long"] * 2


def test_emoji_count_twice() -> None:
    assert message_blocks_errors([section("🚀" * 1_500)]) == []
    assert message_blocks_errors([section("🚀" * 1_501)])
    context = [{"type": "context", "elements": [{"type": "mrkdwn", "text": "🚀" * 1_501}]}]
    assert message_blocks_errors(context)


def test_context_text_is_at_most_3000() -> None:
    def context(size: int) -> list[dict[str, Any]]:
        return [{"type": "context", "elements": [{"type": "mrkdwn", "text": "x" * size}]}]

    assert message_blocks_errors(context(3_000)) == []
    assert any("elements/0/text" in e for e in message_blocks_errors(context(3_001)))


@pytest.mark.parametrize("kind", ["static_select", "checkboxes", "multi_static_select"])
def test_option_text_and_description_are_at_most_75(kind: str) -> None:
    extra = {} if kind == "checkboxes" else {"placeholder": plain("p")}
    assert view_errors(form({"type": kind, "options": [option("x" * 75, "y" * 75)], **extra})) == []
    assert view_errors(form({"type": kind, "options": [option("x" * 76)], **extra}))
    assert view_errors(form({"type": kind, "options": [option("x", "y" * 76)], **extra}))
    assert view_errors(form({"type": kind, "options": [option("x", "🚀" * 38)], **extra}))
    assert view_errors(form({"type": kind, "options": [option(value="v" * 76)], **extra}))


def test_checkboxes_hold_10_options_and_selects_100() -> None:
    def options(count: int) -> list[dict[str, Any]]:
        return [option(str(i), value=str(i)) for i in range(count)]

    assert view_errors(form({"type": "checkboxes", "options": options(10)})) == []
    assert view_errors(form({"type": "checkboxes", "options": options(11)}))
    select = {"type": "static_select", "placeholder": plain("p")}
    assert view_errors(form({**select, "options": options(100)})) == []
    assert view_errors(form({**select, "options": options(101)}))
    # In a message too (an accessory or an actions block).
    actions = [{"type": "actions", "elements": [{**select, "action_id": "s", "options": options(101)}]}]
    assert message_blocks_errors(actions)


def test_a_text_inputs_initial_value_fits_its_max_length_of_at_most_3000() -> None:
    field = {"type": "plain_text_input"}
    assert view_errors(form({**field, "initial_value": "x" * 3_000})) == []
    assert view_errors(form({**field, "initial_value": "x" * 3_001}))
    assert view_errors(form({**field, "initial_value": "🚀" * 1_501}))
    assert view_errors(form({**field, "max_length": 10, "initial_value": "x" * 10})) == []
    assert view_errors(form({**field, "max_length": 10, "initial_value": "x" * 11}))
    assert view_errors(form({**field, "max_length": 3_001}))


async def test_a_view_too_large_is_refused(slack: FakeSlack) -> None:
    client = slack.client()
    big = {"type": "modal", "title": plain("T"), "blocks": [section("x" * 2_900)] * 99}
    assert any("view_too_large" in e for e in view_errors(big))
    with pytest.raises(SlackApiError) as refused:
        await client.views_open(trigger_id=trigger_id(), view=big)
    assert refused.value.response["error"] == "invalid_arguments"
    assert view_errors({**big, "blocks": [section("x" * 2_900)] * 50}) == []
