"""Slack's payload shapes for what people do on the page, and what the page may not ask for."""

from __future__ import annotations

from typing import Any

from . import people

Selected = str | list[str] | None
"""What the page sends for an element: nothing for a button, an option value, or several."""


class Refused(Exception):
    """The page asked for something Slack would not let a person do (HTTP ``status``)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def envelope(user: str) -> dict[str, Any]:
    """The fields every interaction payload carries."""
    name = people.name_of(user)
    return {
        "team": {"id": people.TEAM_ID, "domain": people.TEAM_DOMAIN},
        "user": {"id": user, "username": name, "name": name, "team_id": people.TEAM_ID},
        "api_app_id": people.APP_ID,
        "token": "unused",
        "enterprise": None,
        "is_enterprise_install": False,
    }


def known(user: str) -> None:
    """Refuse a person the playground does not have."""
    if people.person(user) is None:
        raise Refused(f"unknown person {user!r}")


def find_element(blocks: list[dict[str, Any]], block_id: str, action_id: str) -> dict[str, Any] | None:
    """The element ``blocks`` show under that block and action id (None: nothing to click there)."""
    for block in blocks:
        if block.get("block_id") != block_id:
            continue
        for element in [*block.get("elements", []), block.get("accessory"), block.get("element")]:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return element
    return None


def chosen(element: dict[str, Any], selected: Selected) -> dict[str, Any]:
    """The element's value in Slack's state shape, from what the page picked or typed."""
    kind = element.get("type")
    if kind == "button":
        return {}
    if kind == "plain_text_input":
        return {"value": selected if isinstance(selected, str) and selected else None}
    options = {o["value"]: o for o in element.get("options", [])}
    picks = [selected] if isinstance(selected, str) else list(selected or [])
    unknown = [p for p in picks if p not in options]
    if unknown:
        raise Refused(f"no such option: {unknown[0]!r}")
    if kind in ("checkboxes", "multi_static_select"):
        return {"selected_options": [options[p] for p in picks]}
    return {"selected_option": options[picks[0]] if picks else None}
