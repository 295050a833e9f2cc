"""Events API payloads: the envelope Slack POSTs around an event, ``message`` events, redeliveries."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from tests.fakes.slack_payload_parts import VERIFICATION_TOKEN, unique
from tests.fakes.slack_workspace import APP_ID, BOT_USER_ID, TEAM_ID


def event_callback(
    event: Mapping[str, Any],
    *,
    event_id: str | None = None,
    team_id: str = TEAM_ID,
    enterprise_id: str | None = None,
    is_ext_shared_channel: bool = False,
    org_wide: bool = False,
) -> dict[str, Any]:
    """The Events API envelope Slack POSTs (JSON) around one event.

    ``team_id`` is the workspace the event happened in; in a Slack Connect
    channel (``is_ext_shared_channel``) the author's own workspace is the event's
    ``user_team``. ``org_wide``: delivered to an org-wide install of
    ``enterprise_id``, whose authorization names the organisation and no workspace."""
    installed = {
        "team_id": None if org_wide else team_id,
        "user_id": BOT_USER_ID,
        "is_bot": True,
        "is_enterprise_install": org_wide,
    }
    envelope: dict[str, Any] = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": APP_ID,
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id or f"Ev{unique():08d}",
        "event_time": int(time.time()),
        "authorizations": [installed],
        "is_ext_shared_channel": is_ext_shared_channel,
    }
    if org_wide and enterprise_id is None:
        raise ValueError("an org-wide install belongs to an organisation: give enterprise_id")
    if enterprise_id is not None:
        envelope["enterprise_id"] = enterprise_id
        envelope["authorizations"][0]["enterprise_id"] = enterprise_id
    return envelope


def message_event(
    channel: str,
    ts: str,
    user: str | None,
    text: str,
    *,
    thread_ts: str | None = None,
    subtype: str | None = None,
    bot_id: str | None = None,
    user_team: str | None = None,
    team: str | None = None,
) -> dict[str, Any]:
    """A ``message`` event (``message.channels``), as a thread reply when ``thread_ts`` is given.

    ``user_team``: the author's own workspace, which Slack adds (with ``source_team``) in shared channels;
    ``team``: the workspace the message was written in (Enterprise Grid events carry it)."""
    event: dict[str, Any] = {
        "type": "message",
        "channel": channel,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel_type": "channel",
    }
    if team is not None:
        event["team"] = team
    if user_team is not None:
        event.update(user_team=user_team, source_team=user_team)
    if user is not None:
        event["user"] = user
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    if subtype is not None:
        event["subtype"] = subtype
    if bot_id is not None:
        event["bot_id"] = bot_id
    if subtype == "message_changed":
        # Edits carry the new message nested, and no user of their own.
        event.pop("user", None)
        event["message"] = {"type": "message", "user": user, "text": text, "ts": ts, "thread_ts": thread_ts}
    return event


def retry_headers(attempt: int, reason: str = "http_timeout") -> dict[str, str]:
    """The headers of Slack's ``attempt``-th redelivery of an event (1 to 3): Slack signs each
    delivery anew, so send the same body again with these and a fresh signature."""
    return {"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": reason}
