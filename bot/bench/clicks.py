"""Signed Approve clicks, as Slack POSTs them to a worker's ``/slack/events``."""

from __future__ import annotations

import asyncio
import json
import time
from typing import cast
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from ..slack.ids import Action, actions_block
from .slack_stub import BOT_USER_ID, TEAM_ID

APPROVER = "U0BENCHAPPROVER"


def approve_payload(request_id: str, channel: str) -> dict[str, object]:
    """A ``block_actions`` payload for Approve on a freshly posted request (revision 0)."""
    return {
        "type": "block_actions",
        "user": {"id": APPROVER, "username": "bench", "name": "bench", "team_id": TEAM_ID},
        "api_app_id": "A0BENCH",
        "token": "unused-verification-token",
        "container": {
            "type": "message",
            "message_ts": "1700000000.000001",
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": f"1700000000000.1700000000000.{request_id}",
        "team": {"id": TEAM_ID, "domain": "bench"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "approvals"},
        "message": {
            "type": "message",
            "user": BOT_USER_ID,
            "ts": "1700000000.000001",
            "text": "",
            "blocks": [],
        },
        "state": {"values": {}},
        "response_url": "https://hooks.slack.com/actions/T0BENCH/1/unused",
        "actions": [
            {
                "type": "button",
                "action_id": Action.APPROVE.value,
                "block_id": actions_block(request_id, 0),
                "text": {"type": "plain_text", "text": "Approve"},
                "value": request_id,
                "action_ts": "1700000001.000001",
            }
        ],
    }


class ClickSigner:
    """Signs request bodies with the workers' signing secret, at the moment they are sent."""

    def __init__(self, signing_secret: str) -> None:
        self._verifier = SignatureVerifier(signing_secret)

    def approve(self, request_id: str, channel: str) -> tuple[bytes, dict[str, str]]:
        """Body and headers of one Approve click."""
        body = urlencode({"payload": json.dumps(approve_payload(request_id, channel))})
        timestamp = str(int(time.time()))
        return body.encode(), {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            # Optional only for a missing timestamp or body; both are given.
            "X-Slack-Signature": cast(str, self._verifier.generate_signature(timestamp=timestamp, body=body)),
        }


class Clicks:
    """Approve clicks sent to the workers, at most ``concurrency`` in flight."""

    def __init__(
        self, session: aiohttp.ClientSession, signer: ClickSigner, channel: str, concurrency: int
    ) -> None:
        self.session = session
        self.signer = signer
        self.channel = channel
        self.concurrency = concurrency

    async def approve_all(
        self, requests: list[str], urls: list[str], rate: float, *, acked: bool = False
    ) -> dict[str, float]:
        """Approve each request at ``rate`` a second (0: as fast as ``concurrency`` allows), across ``urls``.

        Returns request id → when its click was sent, or, with ``acked``, when the worker answered."""
        loop = asyncio.get_running_loop()
        begin = loop.time()
        times: dict[str, float] = {}
        slots = asyncio.Semaphore(self.concurrency)
        tasks = []
        for index, request_id in enumerate(requests):
            if rate > 0:
                await asyncio.sleep(max(0.0, begin + index / rate - loop.time()))
            url = urls[index % len(urls)]
            tasks.append(asyncio.create_task(self._approve(url, request_id, slots, times, acked=acked)))
        await asyncio.gather(*tasks)
        return times

    async def _approve(
        self, url: str, request_id: str, slots: asyncio.Semaphore, times: dict[str, float], *, acked: bool
    ) -> None:
        body, headers = self.signer.approve(request_id, self.channel)
        async with slots:
            times[request_id] = time.monotonic()
            async with self.session.post(f"{url}/slack/events", data=body, headers=headers) as response:
                if response.status != 200:
                    raise RuntimeError(
                        f"click on {request_id}: HTTP {response.status} {await response.text()}"
                    )
                await response.read()
            if acked:
                times[request_id] = time.monotonic()
