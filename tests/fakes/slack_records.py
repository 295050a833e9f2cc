"""What the fake records: the calls it answered, the payloads it rejected, the messages it shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.fakes.slack_workspace import APP_ID, BOT_ID, BOT_USER_ID, TEAM_ID

FIRST_TS = "1700000000.000100"
"""A message ts from the past, for payloads about a message the fake never posted.
Messages the fake posts carry the time they were posted, as Slack's do."""


@dataclass(frozen=True)
class SlackCall:
    """One request as the fake received and answered it (the token is not in ``args``)."""

    method: str
    args: dict[str, Any]
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether Slack would have reported success."""
        return self.status == 200 and bool(self.response.get("ok"))


@dataclass(frozen=True)
class Invalid:
    """A payload the fake rejected as Slack would (bad blocks, view or text)."""

    method: str
    error: str
    reasons: tuple[str, ...]


@dataclass
class PostedMessage:
    """What Slack currently shows for one message."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    edits: int = 0
    user: str = BOT_USER_ID
    """Who wrote it: the bot, or a person (``FakeSlack.reply``)."""
    metadata: dict[str, Any] | None = None
    """The message metadata it was posted with (``chat.postMessage`` ``metadata``)."""
    team: str = TEAM_ID
    """The author's workspace: another organisation's in a Slack Connect channel."""

    @property
    def by_bot(self) -> bool:
        return self.user == BOT_USER_ID

    def as_dict(self) -> dict[str, Any]:
        """The message object as Slack returns it (and embeds in interaction payloads)."""
        message: dict[str, Any] = {"type": "message", "user": self.user}
        if self.by_bot:
            message |= {"bot_id": BOT_ID, "app_id": APP_ID}
        message |= {"team": self.team, "text": self.text, "blocks": self.blocks, "ts": self.ts}
        if self.team != TEAM_ID:
            message["user_team"] = self.team
        if self.thread_ts is not None:
            message["thread_ts"] = self.thread_ts
        if self.edits:
            message["edited"] = {"user": BOT_USER_ID, "ts": self.ts}
        return message


@dataclass(frozen=True)
class EphemeralMessage:
    """A ``chat.postEphemeral`` message (only ``user`` sees it; it cannot be updated)."""

    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]]
    message_ts: str


@dataclass
class Fault:
    """An injected answer used instead of the real one ``remaining`` more times."""

    status: int
    body: dict[str, Any] | str
    headers: dict[str, str]
    remaining: int
