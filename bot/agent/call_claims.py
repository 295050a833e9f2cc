"""Which tool call a ``PermissionRequest`` is about, when its input names none.

Claude Code gives a ``PermissionRequest`` hook no ``tool_use_id``, and the
session transcript cannot stand in for one: the CLI writes it in batches, and
a later call's ``tool_use`` is often not there yet when the hook runs (seen
with CLI 2.1.337). What the input does name is the session, the user's
prompt (``prompt_id``, one per turn) and the call itself, and Claude Code
asks about the calls of a turn one at a time, in order. So the n-th
identical call of a prompt is named ``<prompt>:<call fingerprint>:<n>``, and
a hook takes the first such name no other hook holds (``SET NX``).

Once a hook has answered for a name, the name is marked answered and no
later hook takes it: one approval is never handed to a second, identical
call. A hook stopped before it answered (Claude Code's timeout, Esc) gives
its name back, so the same call asked again finds the same request.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from ..approvals import keys, scripts
from ..approvals.model import call_hash
from .hook_events import PermissionRequestCall

MAX_SAME_CALLS = 64
"""Identical calls one prompt may ask about; past it the call is refused."""
_LOOKUP_BATCH = 8


class TooManyCalls(Exception):
    """Every name this call could take is held: refused rather than sharing another call's decision."""


@dataclass(frozen=True)
class Claim:
    call: str
    """The call's name within its session."""
    key: str
    token: str


class CallClaims:
    """Claims a call's name for one hook; marks it answered, or gives it back."""

    def __init__(self, redis: Redis, *, hold: float) -> None:
        """``hold``: seconds a claim outlives a hook that died without giving it back."""
        self.redis = redis
        self.hold = max(1, int(hold) + 1)
        self._unlock = redis.register_script(scripts.UNLOCK)

    async def claim(self, call: PermissionRequestCall) -> Claim:
        token = f"wait:{secrets.token_hex(8)}"
        fingerprint = call_hash(call.tool_name, call.tool_input)[:32]
        for n in range(MAX_SAME_CALLS):
            name = f"{call.prompt_id}:{fingerprint}:{n}"
            key = keys.call_claim(call.session_id, name)
            if await self.redis.set(key, token, nx=True, ex=self.hold):
                return Claim(name, key, token)
        raise TooManyCalls(call.tool_name)

    async def attach(self, claim: Claim, request_id: str) -> Claim:
        """Record which request the waiting hook asked, for ``waiting_request``."""
        token = f"{claim.token}:{request_id}"
        await self.redis.set(claim.key, token, xx=True, ex=self.hold)
        return Claim(claim.call, claim.key, token)

    async def waiting_request(self, session_id: str, prompt_id: str, tool_name: str, tool_input: dict[str, Any]) -> str | None:
        """The request a hook is still asking Slack about for this call (the oldest such), if any."""
        fingerprint = call_hash(tool_name, tool_input)[:32]
        for start in range(0, MAX_SAME_CALLS, _LOOKUP_BATCH):
            names = [keys.call_claim(session_id, f"{prompt_id}:{fingerprint}:{n}") for n in range(start, start + _LOOKUP_BATCH)]
            values = await self.redis.mget(names)
            if not any(values):
                return None  # names are taken lowest first: none further on
            for value in values:
                if value is None:
                    continue  # given back
                held = value.decode() if isinstance(value, bytes) else str(value)
                if held.startswith("wait:") and held.count(":") == 2:
                    return held.rsplit(":", 1)[1]
        return None

    async def answered(self, claim: Claim) -> None:
        """Before the answer goes out: no other hook may take this call's name, and its decision."""
        await self.redis.set(claim.key, keys.CALL_ANSWERED, ex=keys.RETENTION_SECONDS)

    async def give_back(self, claim: Claim) -> None:
        """Stopped before answering: the same call asked again takes the same name."""
        await self._unlock(keys=[claim.key], args=[claim.token])
