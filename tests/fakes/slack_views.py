"""The fake's views: modals opened with a ``trigger_id``, updated by id or hash, and App Home tabs."""

from __future__ import annotations

import re
from typing import Any

from bot.slack.block_kit_check import view_errors
from tests.fakes.slack_requests import Reject
from tests.fakes.slack_state import SlackState
from tests.fakes.slack_workspace import APP_ID, BOT_ID, TEAM_ID, USER_ID

_TRIGGER = re.compile(r"^([0-9]+)\.([0-9]+)\.([0-9a-f]+)$")


class ViewsApi(SlackState):
    """``views.open``, ``views.push``, ``views.update`` and ``views.publish``."""

    def _open_with_trigger(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """Check ``trigger_id`` and ``view``, then spend the trigger (each opens one view)."""
        trigger_id = args.get("trigger_id")
        if not trigger_id:
            raise self._reject_invalid(method, "invalid_arguments", ["missing required field: trigger_id"])
        shape = _TRIGGER.match(str(trigger_id))
        if shape is None:
            raise Reject("invalid_trigger_id")
        if trigger_id in self._used_triggers:
            raise Reject("exchanged_trigger_id")
        # slack_payload_parts mints triggers with their time in ms first: 3 s after it
        # the trigger opens nothing (a "1.2.abc" is from 1970: long expired).
        if self.clock() - int(shape.group(1)) / 1000 > self.trigger_ttl:
            raise Reject("expired_trigger_id")
        view = self._checked_view(method, args)
        self._used_triggers.add(str(trigger_id))
        return self._store_view(view, view_id=None, root=None, previous=None)

    def _checked_view(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        reasons = view_errors(view)
        if reasons:
            raise self._reject_invalid(method, "invalid_arguments", reasons)
        assert isinstance(view, dict)
        return view

    def _store_view(
        self, view: dict[str, Any], *, view_id: str | None, root: str | None, previous: str | None
    ) -> dict[str, Any]:
        self._view_counter += 1
        view_id = view_id or f"V0VIEW{self._view_counter:04d}"
        stored = {
            "id": view_id,
            "team_id": TEAM_ID,
            "type": view["type"],
            "title": view.get("title"),
            "submit": view.get("submit"),
            "close": view.get("close"),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": f"1700000000.{self._view_counter:08x}",
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "root_view_id": root or view_id,
            "previous_view_id": previous,
            "app_id": APP_ID,
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
        }
        self.views[view_id] = stored
        return stored

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user = args.get("user_id")
        if not isinstance(user, str) or not USER_ID.match(user):
            raise Reject("invalid_user")
        view = self._checked_view("views.publish", args)
        if view.get("type") != "home":
            raise self._reject_invalid("views.publish", "invalid_arguments", ["view type must be home"])
        stored = self._store_view(view, view_id=None, root=None, previous=None)
        self.home_views[user] = stored
        return {"view": stored}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"view": self._open_with_trigger("views.open", args)}

    def _views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        # The fake keeps no view stack: a pushed view is stored like an opened one.
        return {"view": self._open_with_trigger("views.push", args)}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if view_id:
            current = self.views.get(str(view_id))
        elif external_id:
            current = next((v for v in self.views.values() if v["external_id"] == external_id), None)
        else:
            raise self._reject_invalid(
                "views.update", "invalid_arguments", ["view_id or external_id is required"]
            )
        if current is None:
            raise Reject("not_found")
        if args.get("hash") and args["hash"] != current["hash"]:
            raise Reject("hash_conflict")
        view = self._checked_view("views.update", args)
        stored = self._store_view(
            view, view_id=current["id"], root=current["root_view_id"], previous=current["previous_view_id"]
        )
        return {"view": stored}
