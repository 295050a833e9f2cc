"""Requests to the bot signed as Slack signs them, so they pass the worker's signature check."""

from __future__ import annotations

import json
import time
from typing import Any, cast
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from .slack_shapes import Refused


class SignedSender:
    """POSTs bodies to the bot's ``events_url`` with Slack's signature headers; returns its JSON answer."""

    def __init__(self, events_url: str, signing_secret: str) -> None:
        self.events_url = events_url
        self._verifier = SignatureVerifier(signing_secret)
        self._session: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send_form(self, form: dict[str, str]) -> dict[str, Any]:
        """Send ``form`` form-encoded, as Slack sends interactions and slash commands."""
        return await self.send(urlencode(form), "application/x-www-form-urlencoded")

    async def send(self, body: str, content_type: str) -> dict[str, Any]:
        """Send ``body``; raise ``Refused`` (502) unless the bot answers 200."""
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            # Optional only for a missing timestamp or body; both are given.
            "X-Slack-Signature": cast(str, self._verifier.generate_signature(timestamp=timestamp, body=body)),
        }
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.post(self.events_url, data=body.encode(), headers=headers) as response:
            text = await response.text()
            if response.status != 200:
                raise Refused(f"the bot answered {response.status}: {text[:200]}", 502)
        return json.loads(text) if text.strip().startswith("{") else {}
