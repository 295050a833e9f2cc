"""A running ``serve`` worker in a test, and a person's hands on Slack's side of it."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from bot.slack.ids import (
    CHOICE_INPUT,
    EDIT_INPUT,
    OWN_ANSWER_INPUT,
    SLASH_COMMAND,
    Action,
    Field,
    Modal,
    edit_block,
    own_answer_block,
)
from tests.fakes.bot_settings import SIGNING_SECRET
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_block_actions import block_actions
from tests.fakes.slack_records import PostedMessage
from tests.fakes.slack_signing import sign, signed_form, signed_json
from tests.fakes.slack_slash_commands import slash_command
from tests.fakes.slack_view_payloads import view_submission


class Worker:
    """A running ``serve`` worker, and a person's hands on Slack's side."""

    def __init__(
        self, url: str, session: aiohttp.ClientSession, slack: FakeSlack, app: web.Application | None = None
    ) -> None:
        self.url = url
        self.session = session
        self.slack = slack
        self.app = app
        """The worker's application (its policy holder: ``app[bot.web.POLICY]``)."""

    async def post_signed(
        self, payload: dict[str, Any], *, secret: str = SIGNING_SECRET, timestamp: int | None = None
    ) -> aiohttp.ClientResponse:
        body, headers = signed_form(payload, secret, timestamp)
        async with self.session.post(f"{self.url}/slack/events", data=body, headers=headers) as response:
            await response.read()
            return response

    async def event(self, body: dict[str, Any]) -> int:
        """Deliver an Events API request; returns the HTTP status."""
        raw, headers = signed_json(body, SIGNING_SECRET)
        async with self.session.post(f"{self.url}/slack/events", data=raw, headers=headers) as response:
            await response.read()
            return response.status

    async def command(self, user: str, text: str = "") -> dict[str, Any]:
        """Run ``/approvals <text>`` as ``user``; returns the ephemeral answer."""
        body = urlencode(slash_command(user, SLASH_COMMAND, text)).encode()
        headers = {**sign(body, SIGNING_SECRET), "Content-Type": "application/x-www-form-urlencoded"}
        async with self.session.post(f"{self.url}/slack/events", data=body, headers=headers) as response:
            assert response.status == 200
            return await response.json()

    async def click(
        self, user: str, action: Action, message: PostedMessage, *, name: str | None = None
    ) -> aiohttp.ClientResponse:
        """Click a button the message shows (ValueError if it shows none)."""
        response = await self.post_signed(click_payload(message, user, action, name=name))
        assert response.status == 200, response.status
        return response

    async def deny(
        self,
        user: str,
        message: PostedMessage,
        reason: str = "",
        *,
        name: str | None = None,
        stop: bool = False,
    ) -> aiohttp.ClientResponse:
        """Click Deny (or Deny and stop), then submit the modal Slack opened, as a person would."""
        updates = len(self.slack.calls_to("views.update"))
        await self.click(user, Action.DENY_STOP if stop else Action.DENY, message, name=name)
        update = await self.slack.wait_for_call("views.update", count=updates + 1)
        view = self.slack.views[update.args["view_id"]]
        payload = view_submission(
            user,
            view["callback_id"],
            view["private_metadata"],
            {Field.REASON_BLOCK.value: {Field.REASON_INPUT.value: reason}},
            user_name=name or user.lower(),
            view=view,
        )
        return await self.post_signed(payload)

    async def modify(
        self, user: str, message: PostedMessage, values: dict[str, str], *, name: str | None = None
    ) -> dict[str, Any]:
        """Click Modify, then submit the modal with ``values`` (field key → text); returns Slack's ack body."""
        updates = len(self.slack.calls_to("views.update"))
        await self.click(user, Action.MODIFY, message, name=name)
        update = await self.slack.wait_for_call("views.update", count=updates + 1)
        view = self.slack.views[update.args["view_id"]]
        payload = view_submission(
            user,
            Modal.MODIFY.value,
            view["private_metadata"],
            {edit_block(key): {EDIT_INPUT: value} for key, value in values.items()},
            user_name=name or user.lower(),
            view=view,
        )
        body, headers = signed_form(payload, SIGNING_SECRET)
        async with self.session.post(f"{self.url}/slack/events", data=body, headers=headers) as response:
            assert response.status == 200
            text = await response.text()
        return json.loads(text) if text else {}

    async def answer(
        self,
        user: str,
        message: PostedMessage,
        chosen: dict[int, list[int]],
        typed: dict[int, str] | None = None,
    ) -> dict[str, Any]:
        """Click Answer…, pick options (by index) and type answers in the form, submit; returns Slack's ack body."""
        updates = len(self.slack.calls_to("views.update"))
        await self.click(user, Action.ANSWER, message)
        update = await self.slack.wait_for_call("views.update", count=updates + 1)
        view = self.slack.views[update.args["view_id"]]
        values: dict[str, dict[str, Any]] = {}
        for block in view["blocks"]:
            if block.get("type") != "input" or not block["block_id"].startswith("answer."):
                continue
            index = int(block["block_id"].split(".")[1])
            element = block["element"]
            picked = [o for i, o in enumerate(element["options"]) if i in chosen.get(index, [])]
            if element["type"] == "checkboxes":
                values[block["block_id"]] = {CHOICE_INPUT: {"type": "checkboxes", "selected_options": picked}}
            else:
                values[block["block_id"]] = {
                    CHOICE_INPUT: {"type": "static_select", "selected_option": picked[0] if picked else None}
                }
            values[own_answer_block(index)] = {OWN_ANSWER_INPUT: (typed or {}).get(index, "")}
        payload = view_submission(user, Modal.ANSWER.value, view["private_metadata"], values, view=view)
        body, headers = signed_form(payload, SIGNING_SECRET)
        async with self.session.post(f"{self.url}/slack/events", data=body, headers=headers) as response:
            assert response.status == 200
            text = await response.text()
        return json.loads(text) if text else {}


def _button_value(message: PostedMessage, action: Action) -> str:
    for block in message.blocks:
        for element in block.get("elements", []):
            if element.get("action_id") == action.value:
                return element["value"]
    raise ValueError(f"the message shows no {action.value} button")


def click_payload(
    message: PostedMessage, user: str, action: Action = Action.APPROVE, *, name: str | None = None, **org: Any
) -> dict[str, Any]:
    """The ``block_actions`` payload of ``user`` clicking ``action`` on ``message`` (``org``:
    ``user_team``, ``team``, ``enterprise`` as Slack sends them, for clicks from elsewhere)."""
    return block_actions(
        user,
        action.value,
        _button_value(message, action),
        message=message.as_dict(),
        channel=message.channel,
        user_name=name or user.lower(),
        **org,
    )
