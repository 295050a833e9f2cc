"""What Slack POSTs to a bot's request URL, signed the way Slack signs it.

Interaction payloads follow Slack's documented shapes (``block_actions``,
``view_submission``) with every field Bolt reads; ids match the workspace of
:mod:`tests.fakes.slack_api` so a payload and a :class:`FakeSlack` agree.

Example::

    payload = block_actions("U0ALICE", "approve", "req-1", message=slack.message(ch, ts).as_dict())
    body, headers = signed_form(payload, SIGNING_SECRET)
    async with session.post(f"{bot_url}/slack/events", data=body, headers=headers) as resp:
        assert resp.status == 200
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

from .slack_api import APP_ID, BOT_ID, BOT_USER_ID, FIRST_TS, TEAM_DOMAIN, TEAM_ID

__all__ = [
    "DEFAULT_RESPONSE_URL",
    "VERIFICATION_TOKEN",
    "block_actions",
    "event_callback",
    "message_event",
    "retry_headers",
    "sign",
    "signed_form",
    "signed_json",
    "slash_command",
    "trigger_id",
    "view_closed",
    "view_submission",
]

VERIFICATION_TOKEN = "legacy-verification-token"
"""The deprecated ``token`` field every payload still carries (Bolt ignores it)."""

DEFAULT_RESPONSE_URL = f"https://hooks.slack.com/actions/{TEAM_ID}/1700000000000/fake"
"""Real-shaped but unreachable offline; pass ``FakeSlack.response_url(...)`` to use ``respond()``."""

_counter: Iterator[int] = itertools.count(1)


def _unique() -> int:
    return next(_counter)


def trigger_id(minted_at: float | None = None) -> str:
    """A fresh ``trigger_id`` as a click would bring one, minted now (or at ``minted_at``).

    Slack's shape, ``<digits>.<digits>.<hex>``; the first part is the time it was
    minted in milliseconds, which is how :class:`FakeSlack` tells that it expired
    (Slack's live 3 s). Unique, because Slack accepts each trigger once."""
    n = _unique()
    minted = time.time() if minted_at is None else minted_at
    return f"{int(minted * 1000)}.{n}.{n:032x}"


_trigger_id = trigger_id


def _action_ts() -> str:
    return f"1700000001.{_unique():06d}"


def _user(user_id: str, user_name: str | None, team_id: str = TEAM_ID) -> dict[str, Any]:
    name = user_name or user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def _org(team: str | None, enterprise: str | None) -> dict[str, Any]:
    """The payload's ``team``/``enterprise``/``is_enterprise_install`` (``team=None``: an org-wide install)."""
    team_object: dict[str, Any] | None = None
    if team is not None:
        team_object = {"id": team, "domain": TEAM_DOMAIN if team == TEAM_ID else team.lower()}
        if enterprise is not None:
            team_object.update(enterprise_id=enterprise, enterprise_name=enterprise.lower())
    return {
        "team": team_object,
        "enterprise": {"id": enterprise, "name": enterprise.lower()} if enterprise is not None else None,
        "is_enterprise_install": team is None,
    }


def _find_element(blocks: Any, action_id: str) -> tuple[str | None, dict[str, Any]] | None:
    """The (block_id, element) with ``action_id`` in a message's or view's blocks."""
    for block in blocks or []:
        if not isinstance(block, dict):
            continue
        candidates = list(block.get("elements") or []) + [block.get("accessory"), block.get("element")]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block.get("block_id"), element
    return None


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
        found = _find_element(message.get("blocks"), action_id)
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
        "action_ts": _action_ts(),
    }
    if "style" in button:
        action["style"] = button["style"]
    payload = {
        "type": "block_actions",
        "user": _user(user_id, user_name, user_team),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": ephemeral,
        },
        "trigger_id": trigger_id or _trigger_id(),
        **_org(team, enterprise),
        "channel": {"id": channel, "name": channel_name or channel.lower()},
        "message": embedded,
        "state": {"values": {}},
        "response_url": response_url or DEFAULT_RESPONSE_URL,
        "actions": [action],
    }
    if ephemeral:
        del payload["message"]  # Slack keeps no copy of an ephemeral message to send
    return payload


def _input_value(value: str | Mapping[str, Any]) -> dict[str, Any]:
    # A plain string is what a plain_text_input submits; a mapping is passed
    # through for other inputs (e.g. {"type": "static_select", "selected_option": ...}).
    if isinstance(value, str):
        return {"type": "plain_text_input", "value": value}
    return dict(value)


def view_submission(
    user_id: str,
    callback_id: str,
    private_metadata: str,
    values: Mapping[str, Mapping[str, str | Mapping[str, Any]]],
    user_name: str | None = None,
    *,
    view: Mapping[str, Any] | None = None,
    user_team: str = TEAM_ID,
    team: str | None = TEAM_ID,
    enterprise: str | None = None,
) -> dict[str, Any]:
    """A ``view_submission`` payload for a modal (``user_team``, ``team``, ``enterprise``: as for ``block_actions``).

    ``values`` is ``{block_id: {action_id: "typed text"}}`` (or a full state
    value mapping instead of the string). With ``view`` (e.g.
    ``slack.views[view_id]``) its id, title, blocks and hash are used, and every
    ``(block_id, action_id)`` must exist among its input blocks (else ``ValueError``).
    """
    state = {
        block_id: {action_id: _input_value(value) for action_id, value in inputs.items()}
        for block_id, inputs in values.items()
    }
    if view is not None:
        inputs = {
            (block.get("block_id"), block["element"].get("action_id"))
            for block in view.get("blocks") or []
            if isinstance(block, dict)
            and block.get("type") == "input"
            and isinstance(block.get("element"), dict)
        }
        for block_id, by_action in values.items():
            for action_id in by_action:
                if (block_id, action_id) not in inputs:
                    raise ValueError(
                        f"view {view.get('id')} has no input {block_id}/{action_id}; has {sorted(inputs)}"
                    )
        submitted = copy.deepcopy(dict(view))
    else:
        view_id = f"V0SUBMIT{_unique():04d}"
        submitted = {
            "id": view_id,
            "team_id": TEAM_ID,
            "type": "modal",
            "blocks": [],
            "title": {"type": "plain_text", "text": "Modal", "emoji": True},
            "close": None,
            "submit": {"type": "plain_text", "text": "Submit", "emoji": True},
            "hash": f"1700000000.{_unique():08x}",
            "clear_on_close": False,
            "notify_on_close": False,
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": APP_ID,
            "external_id": "",
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
        }
    submitted.update(callback_id=callback_id, private_metadata=private_metadata, state={"values": state})
    return {
        "type": "view_submission",
        "user": _user(user_id, user_name, user_team),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": _trigger_id(),
        "view": submitted,
        "response_urls": [],
        **_org(team, enterprise),
    }


def view_closed(
    user_id: str,
    view: Mapping[str, Any],
    *,
    user_team: str = TEAM_ID,
    team: str | None = TEAM_ID,
    enterprise: str | None = None,
) -> dict[str, Any]:
    """A ``view_closed`` payload: ``view`` (e.g. ``slack.views[view_id]``) was closed with
    its Close button or the ×. Slack sends it only for views opened with ``notify_on_close``."""
    return {
        "type": "view_closed",
        "user": _user(user_id, None, user_team),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "view": copy.deepcopy(dict(view)),
        "is_cleared": False,
        **_org(team, enterprise),
    }


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
        "event_id": event_id or f"Ev{_unique():08d}",
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


def slash_command(
    user_id: str,
    command: str,
    text: str = "",
    *,
    channel: str = "C0APPROVALS",
    team_id: str = TEAM_ID,
    enterprise_id: str | None = None,
    org_wide: bool = False,
) -> dict[str, str]:
    """What Slack form-posts for a slash command (``team_id``: the workspace of whoever typed it;
    ``enterprise_id``: its organisation; ``org_wide``: the app is installed org-wide)."""
    form = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel,
        "channel_name": "approvals",
        "user_id": user_id,
        "user_name": user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "true" if org_wide else "false",
        "response_url": f"https://hooks.slack.com/commands/{TEAM_ID}/{_unique()}/fake",
        "trigger_id": _trigger_id(),
    }
    if enterprise_id is not None:
        form.update(enterprise_id=enterprise_id, enterprise_name=enterprise_id.lower())
    return form


def retry_headers(attempt: int, reason: str = "http_timeout") -> dict[str, str]:
    """The headers of Slack's ``attempt``-th redelivery of an event (1 to 3): Slack signs each
    delivery anew, so send the same body again with these and a fresh signature."""
    return {"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": reason}


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
    found = _find_element(message.get("blocks"), action_id)
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
        "action_ts": _action_ts(),
    }
    if "placeholder" in menu:
        action["placeholder"] = menu["placeholder"]
    payload["actions"] = [action]
    return payload
