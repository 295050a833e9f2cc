"""``block_actions`` payloads: what Slack POSTs when someone clicks a button or picks from a menu.

Example::

    payload = block_actions("U0ALICE", "approve", "req-1", message=slack.message(ch, ts).as_dict())
    body, headers = signed_form(payload, SIGNING_SECRET)
    async with session.post(f"{bot_url}/slack/events", data=body, headers=headers) as resp:
        assert resp.status == 200
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from tests.fakes.slack_payload_parts import (
    DEFAULT_RESPONSE_URL,
    VERIFICATION_TOKEN,
    action_ts,
    find_element,
    org,
    user,
)
from tests.fakes.slack_payload_parts import trigger_id as _trigger_id  # block_actions takes a trigger_id
from tests.fakes.slack_records import FIRST_TS
from tests.fakes.slack_workspace import APP_ID, BOT_ID, BOT_USER_ID, TEAM_ID


def block_actions(
    user_id: str,
    action_id: str,
    value: str,
    block_id: str | None = None,
    channel: str = "C0APPROVALS",
    message_ts: str | None = None,
    user_name: str | None = None,
    trigger_id: str | None = None,
    *,
    message: Mapping[str, Any] | None = None,
    channel_name: str | None = None,
    response_url: str | None = None,
    user_team: str = TEAM_ID,
    team: str | None = TEAM_ID,
    enterprise: str | None = None,
    ephemeral: bool = False,
) -> dict[str, Any]:
    """A ``block_actions`` payload for a button click on a message.

    ``ephemeral``: a click on a message only the clicker sees (a slash command's
    answer): Slack sends no ``message`` then, and says so in ``container.is_ephemeral``.

    With ``message`` (e.g. ``slack.message(ch, ts).as_dict()``) the payload
    embeds it, takes ``ts`` and the button's ``block_id``/text/style from it,
    and raises ``ValueError`` when no element has ``action_id`` — a user cannot
    click a button the message no longer shows. Without it, a minimal message
    is embedded and ``block_id`` defaults to ``"actions"``.

    ``user_team`` is the clicker's own workspace (``user.team_id``: another
    organisation's in a Slack Connect channel); ``team`` and ``enterprise``
    the payload's (``team=None``: an org-wide install, as Slack sends it).
    """
    button: dict[str, Any] = {}
    if message is not None:
        found = find_element(message.get("blocks"), action_id)
        if found is None:
            raise ValueError(f"message {message.get('ts')} shows no element with action_id {action_id!r}")
        found_block_id, button = found
        block_id = block_id or found_block_id
        message_ts = message_ts or message.get("ts")
        embedded = copy.deepcopy(dict(message))
    else:
        embedded = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
            "text": "",
            "blocks": [],
            "ts": message_ts or FIRST_TS,
        }
    message_ts = message_ts or FIRST_TS
    action: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "block_id": block_id or "actions",
        "text": button.get("text") or {"type": "plain_text", "text": action_id, "emoji": True},
        "value": value,
        "action_ts": action_ts(),
    }
    if "style" in button:
        action["style"] = button["style"]
    payload = {
        "type": "block_actions",
        "user": user(user_id, user_name, user_team),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": ephemeral,
        },
        "trigger_id": trigger_id or _trigger_id(),
        **org(team, enterprise),
        "channel": {"id": channel, "name": channel_name or channel.lower()},
        "message": embedded,
        "state": {"values": {}},
        "response_url": response_url or DEFAULT_RESPONSE_URL,
        "actions": [action],
    }
    if ephemeral:
        del payload["message"]  # Slack keeps no copy of an ephemeral message to send
    return payload


def static_select_action(
    user_id: str,
    action_id: str,
    option_value: str,
    *,
    message: Mapping[str, Any],
    channel: str = "C0APPROVALS",
    user_name: str | None = None,
    trigger_id: str | None = None,
    response_url: str | None = None,
    forged: bool = False,
) -> dict[str, Any]:
    """A ``block_actions`` payload for a pick in a ``static_select`` that ``message`` shows.

    Slack sends the picked option whole (``selected_option``: its text and
    value) with the menu's ``placeholder``, and no ``value`` of the element's
    own. ``option_value`` must be one of the menu's options (else
    ``ValueError``: a person cannot pick what is not offered) unless ``forged``,
    which sends it anyway, as a stale client or a forger might.
    """
    found = find_element(message.get("blocks"), action_id)
    if found is None or found[1].get("type") != "static_select":
        raise ValueError(f"message {message.get('ts')} shows no static_select with action_id {action_id!r}")
    block_id, menu = found
    option = next((dict(o) for o in menu.get("options") or [] if o.get("value") == option_value), None)
    if option is None:
        if not forged:
            raise ValueError(f"the menu offers no option with value {option_value!r}")
        option = {"text": {"type": "plain_text", "text": option_value, "emoji": True}, "value": option_value}
    payload = block_actions(
        user_id,
        action_id,
        "",
        channel=channel,
        user_name=user_name,
        trigger_id=trigger_id,
        message=message,
        response_url=response_url,
    )
    action: dict[str, Any] = {
        "type": "static_select",
        "action_id": action_id,
        "block_id": block_id or "actions",
        "selected_option": option,
        "action_ts": action_ts(),
    }
    if "placeholder" in menu:
        action["placeholder"] = menu["placeholder"]
    payload["actions"] = [action]
    return payload
