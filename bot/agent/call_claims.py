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

from ..approvals import keys
from ..approvals.lua.claims import CALL_RAN, UNLOCK
from ..approvals.model import call_hash
from ..redis_client import RedisClient
from .hook_events import PermissionRequestCall

MAX_SAME_CALLS = 64
"""Identical calls one prompt may ask about; past it the call is refused."""


class TooManyCalls(Exception):
    """Every name this call could take is held: refused rather than sharing another call's decision."""


@dataclass(frozen=True)
class Claim:
    call: str
    """The call's name within its session: ``<prompt>:<fingerprint>:<n>``."""
    key: str
    token: str


def _fingerprint(tool_name: str, tool_input: dict[str, Any]) -> str:
    return call_hash(tool_name, tool_input)[:32]


class CallClaims:
    """Claims a call's name for one hook; marks it answered, or gives it back."""

    def __init__(self, redis: RedisClient, *, hold: float) -> None:
        """``hold``: seconds a claim outlives a hook that died without giving it back."""
        self.redis = redis
        self.hold = max(1, int(hold) + 1)
        self._unlock = redis.register_script(UNLOCK)
        self._call_ran = redis.register_script(CALL_RAN)

    async def claim(self, call: PermissionRequestCall) -> Claim:
        token = f"wait:{secrets.token_hex(8)}"
        fingerprint = _fingerprint(call.tool_name, call.tool_input)
        for n in range(MAX_SAME_CALLS):
            key = keys.call_claim(call.session_id, call.prompt_id, fingerprint, n)
            if await self.redis.set(key, token, nx=True, ex=self.hold):
                return Claim(f"{call.prompt_id}:{fingerprint}:{n}", key, token)
        raise TooManyCalls(call.tool_name)

    async def attach(self, claim: Claim, request_id: str) -> Claim:
        """Record which request the waiting hook asked (for ``call_ran``)."""
        token = f"{claim.token}:{request_id}"
        await self.redis.set(claim.key, token, xx=True, ex=self.hold)
        return Claim(claim.call, claim.key, token)

    async def answered(self, claim: Claim, *, allowed_request: str = "") -> None:
        """Before the answer goes out: no other hook may take this call's name, and its decision.

        An allow stays marked as one until the call is seen running (``call_ran``), so
        that run is never taken for another copy's answer in the terminal."""
        value = f"allowed:{allowed_request}" if allowed_request else keys.CALL_ANSWERED
        await self.redis.set(claim.key, value, ex=keys.RETENTION_SECONDS)

    async def call_ran(
        self, session_id: str, prompt_id: str, tool_name: str, tool_input: dict[str, Any]
    ) -> str | None:
        """A call ran: the request the terminal answered first, if that is what happened.

        One of its identical copies that a hook allowed is the one that ran; failing
        that, the oldest copy a hook is still asking Slack about was answered in the
        terminal (identical copies: which one does not change what runs)."""
        fingerprint = _fingerprint(tool_name, tool_input)
        names = [keys.call_claim(session_id, prompt_id, fingerprint, n) for n in range(MAX_SAME_CALLS)]
        result = await self._call_ran(keys=names, args=[])
        if result[0] in (b"waiting", "waiting"):
            return result[1].decode() if isinstance(result[1], bytes) else str(result[1])
        return None

    async def give_back(self, claim: Claim) -> None:
        """Stopped before answering: the same call asked again takes the same name."""
        await self._unlock(keys=[claim.key], args=[claim.token])
