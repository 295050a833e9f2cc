"""The ``/approvals`` slash command."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from ... import text
from ...approvals.allowlist import TeamAllowList
from .. import blocks
from ..ids import SLASH_COMMAND


def register(app: AsyncApp, allowlist: TeamAllowList) -> None:
    @app.command(SLASH_COMMAND)
    async def approvals(ack: AsyncAck, body: dict[str, Any]) -> None:
        words = str(body.get("text") or "").split()
        if words[:1] == ["rules"]:
            listing = blocks.team_rules(await allowlist.all())
            await ack(response_type="ephemeral", text=listing.text, blocks=listing.blocks)
        else:
            await ack(response_type="ephemeral", text=text.COMMAND_HELP)
