"""The ``/approvals`` slash command."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from ... import text
from ...approvals.allowlist import TeamAllowList
from ...approvals.model import ApprovalRequest
from ...approvals.store import RequestStore
from .. import blocks
from ..ids import SLASH_COMMAND


async def decidable(store: RequestStore, user: str) -> list[ApprovalRequest]:
    """Pending requests ``user`` may decide, oldest first."""
    ids = await store.decidable_by(user, await store.pending())
    return [r for r in await store.many(ids) if r is not None]


def register(app: AsyncApp, store: RequestStore, allowlist: TeamAllowList) -> None:
    @app.command(SLASH_COMMAND)
    async def approvals(ack: AsyncAck, body: dict[str, Any]) -> None:
        words = str(body.get("text") or "").split()
        if words[:1] == ["rules"]:
            listing = blocks.team_rules(await allowlist.all())
        elif not words:
            listing = blocks.pending_list(await decidable(store, str(body.get("user_id") or "")))
        else:
            await ack(response_type="ephemeral", text=text.COMMAND_HELP)
            return
        await ack(response_type="ephemeral", text=listing.text, blocks=listing.blocks)
