"""Payloads about a modal: ``view_submission`` when it is submitted, ``view_closed`` when it is closed."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from tests.fakes.slack_payload_parts import VERIFICATION_TOKEN, org, trigger_id, unique, user
from tests.fakes.slack_workspace import APP_ID, BOT_ID, TEAM_ID


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
        view_id = f"V0SUBMIT{unique():04d}"
        submitted = {
            "id": view_id,
            "team_id": TEAM_ID,
            "type": "modal",
            "blocks": [],
            "title": {"type": "plain_text", "text": "Modal", "emoji": True},
            "close": None,
            "submit": {"type": "plain_text", "text": "Submit", "emoji": True},
            "hash": f"1700000000.{unique():08x}",
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
        "user": user(user_id, user_name, user_team),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id(),
        "view": submitted,
        "response_urls": [],
        **org(team, enterprise),
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
        "user": user(user_id, None, user_team),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "view": copy.deepcopy(dict(view)),
        "is_cleared": False,
        **org(team, enterprise),
    }
