"""The ``/approvals`` slash command."""

from __future__ import annotations

import time
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from ... import text
from ...approvals.allowlist import TeamAllowList, TeamRule
from ...approvals.model import ApprovalRequest, State
from ...approvals.store import RequestStore
from ..blocks.lists import pending_list, team_rules
from ..identity import WORKSPACE_URL
from ..ids import SLASH_COMMAND
from ..workspaces import WORKSPACE


async def decidable(store: RequestStore, user: str) -> list[ApprovalRequest]:
    """Pending requests ``user`` may decide, oldest first.

    Only what a click could still change: not a request that ended between
    the check and the read, nor one past its expiry that the sweep has not
    ended yet, nor one whose N-of-M approval already counts ``user``'s vote.
    In OAuth mode, only the requests of the installation the listener acts for."""
    ids = await store.decidable_by(user, await store.pending())
    now = time.time()
    workspace = WORKSPACE.get()  # None with one bot token: every request is this workspace's
    return [
        r
        for r in await store.many(ids)
        if r is not None
        and r.state is State.PENDING
        and not (r.expires_at and r.expires_at <= now)
        and all(vote.user != user for vote in r.votes)
        and (workspace is None or r.team == workspace)
    ]


def granted_here(rule: TeamRule) -> bool:
    """Whether a team rule is shown and removable here: in OAuth mode, only if granted in the
    installation the listener acts for (another workspace's are not its people's to see or remove)."""
    workspace = WORKSPACE.get()
    return workspace is None or rule.team == workspace


async def workspace_rules(allowlist: TeamAllowList) -> list[TeamRule]:
    """The team rules ``granted_here``, oldest first."""
    return [rule for rule in await allowlist.all() if granted_here(rule)]


def workspace_url(context: AsyncBoltContext) -> str | None:
    """The workspace's own URL, from the worker's one ``auth.test`` (``identity.Installation``)."""
    url = context.get(WORKSPACE_URL)
    return url if isinstance(url, str) else None


def register(app: AsyncApp, store: RequestStore, allowlist: TeamAllowList) -> None:
    app.command(SLASH_COMMAND)(CommandListeners(store, allowlist).approvals)


class CommandListeners:
    """The slash command's listener, with what it reads."""

    def __init__(self, store: RequestStore, allowlist: TeamAllowList) -> None:
        self.store = store
        self.allowlist = allowlist

    async def approvals(self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        words = str(body.get("text") or "").split()
        if words[:1] == ["rules"]:
            listing = team_rules(await workspace_rules(self.allowlist))
        elif not words:
            waiting = await decidable(self.store, str(body.get("user_id") or ""))
            listing = pending_list(waiting, workspace_url(context))
        else:
            await ack(response_type="ephemeral", text=text.lists.COMMAND_HELP)
            return
        await ack(response_type="ephemeral", text=listing.text, blocks=listing.blocks)
