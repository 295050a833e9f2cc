"""Slack's request signing: a body and the headers Slack sends with it, for a bot's request URL."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode


def sign(body: bytes, signing_secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's ``X-Slack-Request-Timestamp`` and ``X-Slack-Signature`` headers for ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + ts.encode() + b":" + body
    digest = hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def signed_form(
    payload: Mapping[str, Any], signing_secret: str, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """An interaction request: body ``payload=<json>`` form-encoded, and its headers."""
    body = urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, signing_secret, timestamp)}
    return body, headers


def signed_json(
    body: Mapping[str, Any], signing_secret: str, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """An Events API request: JSON body and its headers."""
    raw = json.dumps(body, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", **sign(raw, signing_secret, timestamp)}
    return raw, headers
