"""The playground's Slack workspace: what the channel shows, to whom, and which modal is open.

The bot changes it through the Web API (``slack_api``); people change it
through the page (``interactions``). Every change bumps ``version`` and wakes
whoever waits in :meth:`Workspace.changed`, which is how the page updates live.

A modal belongs to the page it was opened on (its *client*), as in Slack,
where it opens on the device that was clicked: a page loaded again, or
switched to another person, is another client, and the modals of the one it
replaced are closed, never restored.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..slack.block_kit_check import view_errors
from .people import APP_ID, BOT_ID, BOT_USER_ID, CHANNEL, TEAM_ID


class SlackError(Exception):
    """What the Web API answers as ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, *details: str) -> None:
        super().__init__(error)
        self.error = error
        self.details = details


@dataclass
class Message:
    """A message in the channel, or a reply in one of its threads."""

    ts: str
    user: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    edited: bool = False

    @property
    def by_bot(self) -> bool:
        return self.user == BOT_USER_ID

    def as_slack(self) -> dict[str, Any]:
        """The message object Slack embeds in payloads and ``conversations.replies``."""
        message: dict[str, Any] = {
            "type": "message",
            "user": self.user,
            "text": self.text,
            "ts": self.ts,
            "team": TEAM_ID,
        }
        if self.by_bot:
            message |= {"bot_id": BOT_ID, "app_id": APP_ID}
        if self.blocks:
            message["blocks"] = self.blocks
        if self.thread_ts:
            message["thread_ts"] = self.thread_ts
        if self.edited:
            message["edited"] = {"user": self.user, "ts": self.ts}
        return message


@dataclass
class Ephemeral:
    """A message only ``shown_to`` sees: the bot's (``chat.postEphemeral``, a slash command's answer),
    or Slack's own (``user`` Slackbot)."""

    ts: str
    shown_to: str
    text: str
    blocks: list[dict[str, Any]]
    user: str = BOT_USER_ID
    edited = False

    @property
    def by_bot(self) -> bool:
        return self.user == BOT_USER_ID


@dataclass
class OpenView:
    """A modal open for one person, on one page (``client``)."""

    user: str
    client: str
    view: dict[str, Any]


@dataclass
class Workspace:
    """One channel, its threads, ephemeral messages and open modals."""

    channel: str = CHANNEL
    messages: dict[str, Message] = field(default_factory=dict)
    ephemerals: list[Ephemeral] = field(default_factory=list)
    views: dict[str, OpenView] = field(default_factory=dict)
    version: int = 0
    closed: bool = False

    def __post_init__(self) -> None:
        self._changed = asyncio.Event()
        self._clock = itertools.count(1)
        self._triggers: dict[str, tuple[str, str]] = {}
        self._last_ts = 0.0
        self._watching: Counter[tuple[str, str]] = Counter()

    # -- live updates ---------------------------------------------------------

    def touch(self) -> None:
        """Record that something a person can see changed."""
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def close(self) -> None:
        """The demo is stopping: wake every live stream so it can end."""
        self.closed = True
        self.touch()

    async def changed(self, since: int) -> int:
        """Wait until ``version`` moves past ``since``; return the new version."""
        while self.version == since:
            await self._changed.wait()
        return self.version

    # -- messages -------------------------------------------------------------

    def next_ts(self) -> str:
        """A message ts like Slack's: the time it was posted, unique and increasing."""
        self._last_ts = max(time.time(), self._last_ts + 0.000001)
        return f"{self._last_ts:.6f}"

    def post(
        self, user: str, text: str, blocks: list[dict[str, Any]], thread_ts: str | None = None
    ) -> Message:
        if thread_ts is not None and thread_ts not in self.messages:
            raise SlackError("thread_not_found")
        message = Message(self.next_ts(), user, text, _with_block_ids(blocks), thread_ts)
        self.messages[message.ts] = message
        self.touch()
        return message

    def edit(self, shown: Message | Ephemeral, text: str, blocks: list[dict[str, Any]]) -> None:
        """Replace what a message shows (``chat.update``, or a ``response_url`` replacing an ephemeral)."""
        shown.text, shown.blocks = text, _with_block_ids(blocks)
        if isinstance(shown, Message):
            shown.edited = True
        self.touch()

    def delete(self, shown: Message | Ephemeral) -> None:
        """Remove a message (``chat.delete``) or an ephemeral one (``delete_original``)."""
        if isinstance(shown, Message):
            del self.messages[shown.ts]
        else:
            self.ephemerals.remove(shown)
        self.touch()

    def message(self, ts: str) -> Message:
        found = self.messages.get(ts)
        if found is None:
            raise SlackError("message_not_found")
        return found

    def roots(self) -> list[Message]:
        return [m for m in self.messages.values() if m.thread_ts is None]

    def replies(self, thread_ts: str) -> list[Message]:
        return [m for m in self.messages.values() if m.thread_ts == thread_ts]

    def post_ephemeral(
        self, user: str, text: str, blocks: list[dict[str, Any]], sender: str = BOT_USER_ID
    ) -> Ephemeral:
        ephemeral = Ephemeral(self.next_ts(), user, text, _with_block_ids(blocks), sender)
        self.ephemerals.append(ephemeral)
        self.touch()
        return ephemeral

    def ephemeral(self, user: str, ts: str) -> Ephemeral:
        found = next((e for e in self.ephemerals if e.shown_to == user and e.ts == ts), None)
        if found is None:
            raise SlackError("message_not_found")
        return found

    # -- modals ---------------------------------------------------------------

    def issue_trigger(self, user: str, client: str = "") -> str:
        """A ``trigger_id`` for one click by ``user`` on the page ``client``: it opens at most one modal, there."""
        trigger = f"{next(self._clock)}.{secrets.token_hex(16)}"
        self._triggers[trigger] = (user, client)
        return trigger

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> dict[str, Any]:
        opener = self._triggers.pop(trigger_id, None)
        if opener is None:
            raise SlackError("invalid_trigger_id")
        user, client = opener
        # Like Slack's client, the page shows one modal at a time; a new one replaces it.
        for view_id in [v for v, shown in self.views.items() if (shown.user, shown.client) == opener]:
            del self.views[view_id]
        stored = self._stored(f"V0DEMO{next(self._clock):06d}", view)
        self.views[stored["id"]] = OpenView(user, client, stored)
        self.touch()
        return stored

    def update_view(
        self, view_id: str, view: dict[str, Any], expected_hash: str | None = None
    ) -> dict[str, Any]:
        current = self.views.get(view_id)
        if current is None:
            raise SlackError("not_found")
        if expected_hash and expected_hash != current.view["hash"]:
            raise SlackError("hash_conflict")
        current.view = self._stored(view_id, view)
        self.touch()
        return current.view

    def close_view(self, view_id: str) -> OpenView | None:
        closed = self.views.pop(view_id, None)
        if closed is not None:
            self.touch()
        return closed

    def view_of(self, user: str, client: str = "") -> dict[str, Any] | None:
        """The modal open for ``user`` on the page ``client``: no other page shows it."""
        return next((v.view for v in self.views.values() if (v.user, v.client) == (user, client)), None)

    # -- pages ------------------------------------------------------------------

    def watch(self, user: str, client: str) -> None:
        """A page (``client``) showing ``user``'s view started its live stream."""
        self._watching[user, client] += 1

    def unwatch(self, user: str, client: str) -> list[OpenView]:
        """A live stream ended; when it was that page's last, its modals close (returned)."""
        self._watching[user, client] -= 1
        if self._watching[user, client] > 0:
            return []
        del self._watching[user, client]
        return self.leave(user, client)

    def leave(self, user: str, client: str) -> list[OpenView]:
        """The page ``client`` stopped showing ``user`` (reloaded, closed, switched person):
        close the modals open there, and return them."""
        gone = [view_id for view_id, v in self.views.items() if (v.user, v.client) == (user, client)]
        return [closed for view_id in gone if (closed := self.close_view(view_id)) is not None]

    def _stored(self, view_id: str, view: dict[str, Any]) -> dict[str, Any]:
        problems = view_errors(view)
        if problems:
            raise SlackError("invalid_arguments", *problems)
        return {
            **view,
            "blocks": _with_block_ids(view.get("blocks", [])),
            "id": view_id,
            "hash": f"{next(self._clock)}.{secrets.token_hex(4)}",
            "team_id": TEAM_ID,
            "app_id": APP_ID,
            "bot_id": BOT_ID,
            "state": {"values": {}},
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
        }


def _with_block_ids(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Slack gives every block it stores a ``block_id``; clicks and inputs name their block by it."""
    return [
        {**block, "block_id": secrets.token_hex(3)}
        if isinstance(block, dict) and not block.get("block_id")
        else block
        for block in blocks
    ]
