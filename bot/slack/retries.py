"""Which failures of a job's Slack calls are worth a retry, and how many deliveries a job gets."""

from __future__ import annotations

import asyncio

import aiohttp
from slack_sdk.errors import SlackApiError

MAX_DELIVERIES = 5
"""A post handed out this many times without success is given up as undeliverable."""

_TRANSIENT_SLACK_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def is_transient(exc: Exception) -> bool:
    """Whether the call may succeed if tried again later (rate limited, Slack or the network down)."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        return status == 429 or status >= 500 or exc.response.get("error") in _TRANSIENT_SLACK_ERRORS
    return isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError, OSError))
