"""The fake's ``response_url``: where a bot answers an interaction, at most 5 times in 30 minutes."""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

from aiohttp import web

from tests.fakes.slack_records import EphemeralMessage, SlackCall
from tests.fakes.slack_requests import Reject, blocks_of, read_args, text_of
from tests.fakes.slack_rules import RESPONSE_URL_TTL, RESPONSE_URL_USES
from tests.fakes.slack_state import SlackState


class ResponseUrls(SlackState):
    """Mints ``response_url`` s for payloads and applies what the bot posts to them."""

    def response_url(self, channel: str, message_ts: str) -> str:
        """A ``response_url`` for the message at ``(channel, message_ts)`` served by this fake.

        Posts to it are recorded as calls of method ``"response_url"`` and applied
        like Slack does (``replace_original`` / ``delete_original``).
        """
        key = secrets.token_hex(8)
        self._response_urls[key] = (channel, message_ts)
        self._response_url_uses[key] = [self.clock(), 0]
        return f"{self.url}/response_url/{key}"

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        try:
            args = await read_args(request)
        except ValueError:
            args = {}
        key = request.match_info["key"]
        target = self._response_urls.get(key)
        status, text = 200, "ok"
        if target is None:
            status, text = 404, "no_active_hooks"
        elif self.clock() - self._response_url_uses[key][0] > RESPONSE_URL_TTL:
            status, text = 404, "expired_url"
        elif self._response_url_uses[key][1] >= RESPONSE_URL_USES:
            status, text = 404, "used_url"
        else:
            self._response_url_uses[key][1] += 1
            try:
                self._apply_response(target, args)
            except Reject as reject:
                status, text = 400, str(reject)
        answer: dict[str, Any] = {"ok": True} if status == 200 else {"ok": False, "error": text}
        await self._record(SlackCall("response_url", args, status, answer))
        return web.Response(status=status, text=text, content_type="text/plain")

    def _apply_response(self, target: tuple[str, str], args: dict[str, Any]) -> None:
        channel, ts = target
        if args.get("delete_original") in (True, "true"):
            self.messages.pop((channel, ts), None)
            return
        self._check_text_and_blocks("response_url", args, required=True)
        shown = next((e for e in self.ephemerals if (e.channel, e.message_ts) == (channel, ts)), None)
        if args.get("replace_original") in (True, "true") and shown is not None:
            # An ephemeral message can be replaced only through its response_url.
            index = self.ephemerals.index(shown)
            self.ephemerals[index] = dataclasses.replace(shown, text=text_of(args), blocks=blocks_of(args))
            return
        if args.get("replace_original") in (True, "true"):
            message = self.messages.get((channel, ts))
            if message is None:
                raise Reject("message_not_found")
            message.text, message.blocks = text_of(args), blocks_of(args)
            message.edits += 1
        elif args.get("response_type") == "in_channel":
            self._post(channel, text_of(args), blocks_of(args), args.get("thread_ts"))
        else:
            # The user who clicked is not known here; Slack shows it to them only.
            self.ephemerals.append(
                EphemeralMessage(channel, "", text_of(args), blocks_of(args), self._next_ts())
            )
