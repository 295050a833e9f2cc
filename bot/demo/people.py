"""Who is in the playground's workspace: three people, the on-call group, one channel, the bot."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Person:
    """Someone the page lets you be."""

    id: str
    name: str
    title: str


ALICE = Person("U0ALICE", "alice", "engineer")
BOB = Person("U0BOB", "bob", "engineer")
CASEY = Person("U0CASEY", "casey", "on-call")
PEOPLE = (ALICE, BOB, CASEY)

ONCALL = "S0ONCALL"
USERGROUPS = {ONCALL: ("oncall", (CASEY.id,))}
"""User group id → (handle, members), as ``usergroups.users.list`` answers."""

CHANNEL = "C0APPROVALS"
CHANNEL_NAME = "approvals"

TEAM_ID = "T0DEMO"
TEAM_DOMAIN = "approvals-demo"
APP_ID = "A0DEMO"
BOT_ID = "B0DEMO"
BOT_USER_ID = "U0DEMOBOT"
BOT_NAME = "approvals"
SLACKBOT_ID = "USLACKBOT"
SLACKBOT_NAME = "Slackbot"
"""Who Slack's own notices come from (an unknown ``/command``, for one)."""


def name_of(user_id: str) -> str:
    """The display name of a person or the bot; the id itself for anyone else."""
    if user_id == BOT_USER_ID:
        return BOT_NAME
    if user_id == SLACKBOT_ID:
        return SLACKBOT_NAME
    return next((p.name for p in PEOPLE if p.id == user_id), user_id)


def person(user_id: str) -> Person | None:
    return next((p for p in PEOPLE if p.id == user_id), None)
