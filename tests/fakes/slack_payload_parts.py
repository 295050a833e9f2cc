"""What every payload Slack POSTs to a bot shares: its token, ids, user and organisation objects.

Ids match the workspace of :mod:`tests.fakes.slack_workspace` so a payload and a
:class:`~tests.fakes.slack_api.FakeSlack` agree.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

from tests.fakes.slack_workspace import TEAM_DOMAIN, TEAM_ID

VERIFICATION_TOKEN = "legacy-verification-token"
"""The deprecated ``token`` field every payload still carries (Bolt ignores it)."""

DEFAULT_RESPONSE_URL = f"https://hooks.slack.com/actions/{TEAM_ID}/1700000000000/fake"
"""Real-shaped but unreachable offline; pass ``FakeSlack.response_url(...)`` to use ``respond()``."""

_counter: Iterator[int] = itertools.count(1)


def unique() -> int:
    return next(_counter)


def trigger_id(minted_at: float | None = None) -> str:
    """A fresh ``trigger_id`` as a click would bring one, minted now (or at ``minted_at``).

    Slack's shape, ``<digits>.<digits>.<hex>``; the first part is the time it was
    minted in milliseconds, which is how :class:`FakeSlack` tells that it expired
    (Slack's live 3 s). Unique, because Slack accepts each trigger once."""
    n = unique()
    minted = time.time() if minted_at is None else minted_at
    return f"{int(minted * 1000)}.{n}.{n:032x}"


def action_ts() -> str:
    return f"1700000001.{unique():06d}"


def user(user_id: str, user_name: str | None, team_id: str = TEAM_ID) -> dict[str, Any]:
    name = user_name or user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def org(team: str | None, enterprise: str | None) -> dict[str, Any]:
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


def find_element(blocks: Any, action_id: str) -> tuple[str | None, dict[str, Any]] | None:
    """The (block_id, element) with ``action_id`` in a message's or view's blocks."""
    for block in blocks or []:
        if not isinstance(block, dict):
            continue
        candidates = list(block.get("elements") or []) + [block.get("accessory"), block.get("element")]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block.get("block_id"), element
    return None
