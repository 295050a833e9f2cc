"""Slack Web API errors, said the same way in every log line."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError


def error_code(exc: SlackApiError) -> str:
    """Slack's error code (``channel_not_found``), or the HTTP status when it gave none."""
    return str(exc.response.get("error") or f"HTTP {exc.response.status_code}")


def described(exc: SlackApiError) -> str:
    """The error and, for logs, what Slack said about it: ``invalid_blocks`` and
    others come with ``response_metadata.messages`` naming the block and the reason."""
    metadata = exc.response.get("response_metadata") if isinstance(exc.response.data, dict) else None
    messages = metadata.get("messages") if isinstance(metadata, dict) else None
    if not messages:
        return error_code(exc)
    return f"{error_code(exc)} ({'; '.join(str(m) for m in messages)})"


def method_of(exc: SlackApiError) -> str:
    """The Web API method that failed (``chat.postMessage``), or "" when the response does not say."""
    url = str(getattr(exc.response, "api_url", "") or "")
    return url.rstrip("/").rsplit("/", 1)[-1] if url else ""


def logged(exc: SlackApiError, **fields: object) -> dict[str, object]:
    """``extra=`` for a line about a Slack API error: ``event`` ``slack.error``, the
    ``error`` code and the ``method``, and what the line is about (``fields``)."""
    from ..logs import Event, tagged

    return tagged(Event.SLACK_ERROR, error=error_code(exc), method=method_of(exc) or None, **fields)
