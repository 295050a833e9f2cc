"""What people do on the page, sent to the bot the way Slack sends it.

A click becomes a ``block_actions`` payload, a modal's submit a
``view_submission``, a thread reply a ``message`` event: Slack's shapes,
signed with the signing secret and POSTed to the worker's ``/slack/events``,
so they pass the same signature check and Bolt listeners as Slack's own.
The page names only what it clicked; the element itself (and its options)
comes from the stored message or modal, so nobody can click what is not shown.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import Any

import aiohttp

from ..slack.ids import SLASH_COMMAND
from ..slack.mrkdwn import escape
from ..web import SLACK_EVENTS_PATH
from . import people
from .signed_sender import SignedSender
from .slack_shapes import Refused, Selected, chosen, envelope, find_element, known
from .workspace import Ephemeral, Message, OpenView, Workspace

log = logging.getLogger(__name__)

RESPONSE_PATH = "/demo/response/{key}"
"""Where a ``response_url`` points: answers to slash commands and clicks on ephemeral messages."""

REQUIRED = "Please fill out this field."

MAX_TYPED = 4000
"""Slack's cap on a message a person writes."""

NOT_A_COMMAND = (
    "{command} is not a command here, so nothing was posted. Anything that starts with “/” is read as a "
    "command; to send it as a message, start it with a space."
)
"""Slack's answer (from Slackbot, only to the writer) when a message names a command no app provides."""


class Interactions:
    """Turns what people do on the page into signed Slack requests to the bot."""

    def __init__(self, workspace: Workspace, base_url: str, signing_secret: str) -> None:
        self.workspace = workspace
        self.base_url = base_url
        self.bot = SignedSender(base_url + SLACK_EVENTS_PATH, signing_secret)
        self._response_urls: dict[str, tuple[str, str | None]] = {}

    async def aclose(self) -> None:
        await self.bot.aclose()

    # -- what people do ---------------------------------------------------------

    async def click(
        self,
        user: str,
        ts: str,
        block_id: str,
        action_id: str,
        selected: Selected,
        *,
        ephemeral: bool = False,
        client: str = "",
    ) -> None:
        """A click (or a pick in a select) on an element a message shows, on the page ``client``
        (where a modal it opens will show)."""
        known(user)
        shown: Message | Ephemeral = (
            self.workspace.ephemeral(user, ts) if ephemeral else self.workspace.message(ts)
        )
        element = find_element(shown.blocks, block_id, action_id)
        if element is None:
            raise Refused("that message shows no such element", 404)
        action = {
            "type": element["type"],
            "action_id": action_id,
            "block_id": block_id,
            "action_ts": f"{time.time():.6f}",
            **chosen(element, selected),
        }
        if element["type"] == "button":
            action |= {"text": element["text"], "value": element.get("value", "")}
        elif "placeholder" in element:
            action["placeholder"] = element["placeholder"]
        container = {
            "type": "message",
            "message_ts": ts,
            "channel_id": self.workspace.channel,
            "is_ephemeral": ephemeral,
        }
        message = (
            shown.as_slack()
            if isinstance(shown, Message)
            else {"type": "message", "ts": ts, "text": shown.text, "blocks": shown.blocks}
        )
        payload = {
            "type": "block_actions",
            **envelope(user),
            "container": container,
            "trigger_id": self.workspace.issue_trigger(user, client),
            "channel": {"id": self.workspace.channel, "name": people.CHANNEL_NAME},
            "message": message,
            "state": {"values": {}},
            "response_url": self._response_url(user, ts if ephemeral else None),
            "actions": [action],
        }
        await self.bot.send_form({"payload": json.dumps(payload)})

    async def submit(self, user: str, view_id: str, values: dict[str, dict[str, Selected]]) -> dict[str, str]:
        """Submit a modal; returns the errors to show under its inputs (empty: it closed or changed)."""
        known(user)
        open_view = self.workspace.views.get(view_id)
        if open_view is None or open_view.user != user:
            raise Refused("that modal is not open", 404)
        view = open_view.view
        state: dict[str, dict[str, Any]] = {}
        missing: dict[str, str] = {}
        for block in view.get("blocks", []):
            if block.get("type") != "input":
                continue
            element, block_id = block["element"], block["block_id"]
            picked = values.get(block_id, {}).get(element["action_id"])
            if not picked and not block.get("optional"):
                missing[block_id] = REQUIRED  # Slack's client refuses to submit, the bot never hears of it
            state[block_id] = {element["action_id"]: {"type": element["type"], **chosen(element, picked)}}
        if missing:
            return missing
        payload = {
            "type": "view_submission",
            **envelope(user),
            "trigger_id": self.workspace.issue_trigger(user, open_view.client),
            "view": {**view, "state": {"values": state}},
            "response_urls": [],
        }
        answer = await self.bot.send_form({"payload": json.dumps(payload)})
        return self._apply_view_answer(view_id, answer)

    async def close_view(self, user: str, view_id: str) -> None:
        """The modal's Cancel (or ×, or Escape): it closes, and the bot hears of it if it asked."""
        open_view = self.workspace.views.get(view_id)
        if open_view is not None and open_view.user == user:
            self.workspace.close_view(view_id)
            await self.closed(open_view)

    async def leave(self, user: str, client: str) -> None:
        """The page ``client`` stopped showing ``user``: its modals close, as Slack's do with the window."""
        for closed in self.workspace.leave(user, client):
            await self.closed(closed)

    async def closed(self, closed: OpenView) -> None:
        """Slack sends ``view_closed`` only for a view opened with ``notify_on_close``."""
        if not closed.view.get("notify_on_close") or self.workspace.closed:
            return
        payload = {"type": "view_closed", **envelope(closed.user), "view": closed.view, "is_cleared": False}
        try:
            await self.bot.send_form({"payload": json.dumps(payload)})
        except (Refused, aiohttp.ClientError) as exc:
            # Slack ignores the answer to a view_closed too: the modal is closed either way.
            log.warning("the bot did not take a view_closed: %s", exc)

    async def write(self, user: str, typed: str, thread_ts: str | None) -> None:
        """A message or thread reply; ``/approvals …`` runs the slash command instead.

        Like Slack's clients, a message that starts with ``/`` is a command:
        one no app provides is answered by Slackbot and posts nothing. A
        leading space makes it a message."""
        known(user)
        as_command = typed.startswith("/")
        typed = typed.strip()[:MAX_TYPED]
        if not typed:
            raise Refused("type something first")
        command = typed.split()[0]
        if as_command and command == SLASH_COMMAND and thread_ts is None:
            await self._command(user, typed.removeprefix(SLASH_COMMAND).strip())
            return
        if as_command and command != SLASH_COMMAND and len(command) > 1:
            notice = NOT_A_COMMAND.format(command=escape(command[:100]))
            self.workspace.post_ephemeral(user, notice, [], sender=people.SLACKBOT_ID)
            return
        # Slack's clients escape what people type the same way.
        message = self.workspace.post(user, escape(typed), [], thread_ts)
        event = {
            "type": "message",
            "channel": self.workspace.channel,
            "channel_type": "channel",
            "user": user,
            "text": message.text,
            "ts": message.ts,
            "event_ts": message.ts,
        }
        if thread_ts is not None:
            event["thread_ts"] = thread_ts
        body = {
            "token": "unused",
            "team_id": people.TEAM_ID,
            "api_app_id": people.APP_ID,
            "type": "event_callback",
            "event": event,
            "event_id": f"Ev{message.ts.replace('.', '')}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": people.TEAM_ID, "user_id": people.BOT_USER_ID, "is_bot": True}],
        }
        await self.bot.send(json.dumps(body), "application/json")

    async def _command(self, user: str, text: str) -> None:
        form = {
            "token": "unused",
            "team_id": people.TEAM_ID,
            "team_domain": people.TEAM_DOMAIN,
            "channel_id": self.workspace.channel,
            "channel_name": people.CHANNEL_NAME,
            "user_id": user,
            "user_name": people.name_of(user),
            "command": SLASH_COMMAND,
            "text": text,
            "api_app_id": people.APP_ID,
            "response_url": self._response_url(user, None),
            "trigger_id": self.workspace.issue_trigger(user),
        }
        answer = await self.bot.send_form(form)
        if answer.get("text") or answer.get("blocks"):
            self.workspace.post_ephemeral(
                user, str(answer.get("text") or ""), list(answer.get("blocks") or [])
            )

    def respond(self, key: str, answer: dict[str, Any]) -> None:
        """A message the bot sent to a ``response_url``: replaces the ephemeral clicked, or adds one."""
        target = self._response_urls.get(key)
        if target is None:
            raise Refused("no such response_url", 404)
        user, ephemeral_ts = target
        if ephemeral_ts is not None and answer.get("replace_original") in (True, "true"):
            shown = self.workspace.ephemeral(user, ephemeral_ts)
            self.workspace.edit(shown, str(answer.get("text") or ""), list(answer.get("blocks") or []))
        elif answer.get("delete_original") in (True, "true") and ephemeral_ts is not None:
            self.workspace.delete(self.workspace.ephemeral(user, ephemeral_ts))
        else:
            self.workspace.post_ephemeral(
                user, str(answer.get("text") or ""), list(answer.get("blocks") or [])
            )

    def _response_url(self, user: str, ephemeral_ts: str | None) -> str:
        key = secrets.token_urlsafe(12)
        self._response_urls[key] = (user, ephemeral_ts)
        return f"{self.base_url}{RESPONSE_PATH.format(key=key)}"

    # -- the wire ---------------------------------------------------------------

    def _apply_view_answer(self, view_id: str, answer: dict[str, Any]) -> dict[str, str]:
        """Do what Slack does with a ``view_submission`` response."""
        action = answer.get("response_action")
        if action == "errors":
            return {str(k): str(v) for k, v in (answer.get("errors") or {}).items()}
        if action in ("update", "push"):
            self.workspace.update_view(view_id, answer["view"])
        else:  # no body, or "clear": the modal closes
            self.workspace.close_view(view_id)
        return {}
