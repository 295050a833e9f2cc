"""Signed Approve clicks, as Slack POSTs them to a worker's ``/slack/events``."""

from __future__ import annotations

import json
import time
from typing import cast
from urllib.parse import urlencode

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
