"""The fake workspace the fake Slack serves: its ids, the bot installed in it, its channels and users."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# The fake workspace and the bot installed in it; the payload builders use the same ids.
TEAM_ID = "T0TEAM"
TEAM_DOMAIN = "fake-team"
APP_ID = "A0APP"
BOT_ID = "B0BOT"
BOT_USER_ID = "U0BOT"
DEFAULT_TOKEN = "xoxb-test"
APP_TOKEN = "xapp-test"

USER_ID = re.compile(r"^[UW][A-Z0-9_]+$")  # "_" is not Slack's, but test ids like U_ALICE use it


@dataclass
class FakeChannel:
    """A conversation the fake workspace knows."""

    id: str
    name: str
    is_private: bool = False
    is_member: bool = True
    """Whether the bot is in it (else ``not_in_channel`` on posts and thread reads)."""
    is_archived: bool = False
    members: frozenset[str] | None = None
    """The people in it; None: everyone (``chat.postEphemeral`` to anyone else → ``user_not_in_channel``)."""

    def has_member(self, user: str) -> bool:
        return self.members is None or user in self.members

    def as_dict(self) -> dict[str, Any]:
        """The channel object of ``conversations.info``."""
        is_im = self.id.startswith("D")
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not (self.is_private or is_im),
            "is_group": self.is_private,
            "is_im": is_im,
            "is_mpim": False,
            "is_private": self.is_private or is_im,
            "created": 1_690_000_000,
            "is_archived": self.is_archived,
            "is_general": False,
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_ext_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": TEAM_ID,
            "parent_conversation": None,
            "creator": "U0CREATOR",
            "is_member": self.is_member,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
            "previous_names": [],
        }


@dataclass
class FakeUser:
    """A workspace member for ``users.info``."""

    id: str
    name: str
    real_name: str = ""
    is_bot: bool = False
    deleted: bool = False

    def as_dict(self) -> dict[str, Any]:
        """A minimal user object of ``users.info``."""
        real_name = self.real_name or self.name
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": real_name,
            "tz": "Europe/London",
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "is_admin": False,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1_690_000_000,
            "profile": {
                "real_name": real_name,
                "display_name": self.name,
                "real_name_normalized": real_name,
                "display_name_normalized": self.name,
                "team": TEAM_ID,
            },
        }
