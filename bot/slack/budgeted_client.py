"""The Slack Web API client that draws every call on the workers' shared budget (``budget.SlackBudget``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.exceptions import RedisError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from .. import metrics
from ..logs import Event, tagged
from .budget import SlackBudget

log = logging.getLogger(__name__)

RATE_LIMIT_RETRIES = 5
"""429s one background call waits out (each pausing its bucket) before it fails as transient."""


def retry_after(exc: SlackApiError) -> float | None:
    """The seconds a 429 asks to wait (None if the error is not a 429)."""
    if exc.response.status_code != 429:
        return None
    headers = exc.response.headers or {}
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value if isinstance(value, str) else value[0]))
            except (TypeError, ValueError, IndexError):
                break
    return 1.0


def _channel_of(*sources: dict[str, Any] | None) -> str:
    for source in sources:
        if source and isinstance(source.get("channel"), str):
            return source["channel"]
    return ""


class BudgetedClient(AsyncWebClient):
    """An ``AsyncWebClient`` whose every Web API call draws on a ``SlackBudget``.

    ``interactive=False`` (the job worker): wait for a token at the task's
    ``priority``; on a 429 pause the bucket for every worker and try again,
    ``RATE_LIMIT_RETRIES`` times. ``interactive=True`` (listeners, within
    Slack's 3 seconds): never wait, never retry a 429; the call is counted
    after it was made. Without a budget it is a plain client.
    """

    def __init__(
        self, *args: Any, budget: SlackBudget | None = None, interactive: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.budget = budget
        self.interactive = interactive

    async def api_call(
        self,
        api_method: str,
        *,
        http_verb: str = "POST",
        files: dict | None = None,
        data: dict | Any = None,
        params: dict | None = None,
        json: dict | None = None,
        headers: dict | None = None,
        auth: dict | None = None,
    ) -> AsyncSlackResponse:
        call = {
            "http_verb": http_verb,
            "files": files,
            "data": data,
            "params": params,
            "json": json,
            "headers": headers,
            "auth": auth,
        }
        if self.budget is None:
            return await self._counted(api_method, call)
        channel = _channel_of(json, data if isinstance(data, dict) else None, params)
        if self.interactive:
            return await self._interactive_call(self.budget, api_method, channel, call)
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            try:
                await self.budget.acquire(api_method, channel)
            except (RedisError, OSError) as exc:
                # The budget paces calls; Slack enforces the limit. Without Redis the
                # call goes unpaced (a 429 then waits here) rather than not at all.
                log.warning("Slack budget unreadable (%s): %s goes unpaced", type(exc).__name__, api_method)
            try:
                return await self._counted(api_method, call)
            except SlackApiError as exc:
                wait = retry_after(exc)
                if wait is None or attempt == RATE_LIMIT_RETRIES:
                    raise
                log.warning(
                    "Slack rate-limited %s; every worker pauses it for %ss",
                    api_method,
                    wait,
                    extra=tagged(Event.SLACK_RATE_LIMITED, method=api_method, retry_after=wait),
                )
                try:
                    await self.budget.pause(api_method, channel, wait)
                except (RedisError, OSError):
                    await asyncio.sleep(wait)  # the others will meet their own 429
        raise AssertionError("unreachable")

    async def _counted(self, api_method: str, call: dict[str, Any]) -> AsyncSlackResponse:
        """One call sent to Slack, counted in the metrics (each attempt; 429s and failures apart)."""
        metrics.slack_call(api_method)
        try:
            return await super().api_call(api_method, **call)
        except SlackApiError as exc:
            (metrics.slack_rate_limited if exc.response.status_code == 429 else metrics.slack_error)(
                api_method
            )
            raise
        except Exception:
            metrics.slack_error(api_method)
            raise

    async def _interactive_call(
        self, budget: SlackBudget, api_method: str, channel: str, call: dict[str, Any]
    ) -> AsyncSlackResponse:
        wait: float | None = None
        try:
            return await self._counted(api_method, call)
        except SlackApiError as exc:
            wait = retry_after(exc)
            raise
        finally:
            budget.count_later(api_method, channel, wait)
