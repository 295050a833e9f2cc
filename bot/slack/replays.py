"""Each signed HTTP request from Slack takes effect once, on whichever worker gets it.

A signature stays valid for as long as its timestamp is within
``SIGNATURE_WINDOW`` of the verifier's clock, on either side (slack_sdk
``SignatureVerifier``). Anyone who saw a request in that time (a log, a
proxy, a load balancer) could send it again, and the signature would still
verify: a replayed Modify would be a new proposal and drop the votes. So
the first worker to verify a signature claims it in Redis (``SET NX``) for
as long as it can verify, and any later copy is answered without being
dispatched.

Socket Mode needs none of this: its messages arrive over a WebSocket the
worker opened itself with the app-level token, so nobody else can inject or
replay one, and Slack's own redeliveries of an event are deduplicated on
``event_id`` by the thread listener.
"""

from __future__ import annotations

import time
from typing import Any

from ..approvals import keys
from ..approvals.coalesce import Coalescer
from ..redis_client import RedisClient
from .limits import SIGNATURE_WINDOW


class SignedRequests:
    """The signatures some worker already took."""

    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        # Clicks that arrive together claim together: one pipeline, not one round trip each.
        self._claims: Coalescer[tuple[str, int], Any] = Coalescer(self._claim)

    async def _claim(self, claims: list[tuple[str, int]]) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, ttl in claims:
                pipe.set(key, b"1", nx=True, ex=ttl)
            return await pipe.execute(raise_on_error=False)

    async def aclose(self) -> None:
        """Stop the claims still running; call it before closing ``redis`` (``Coalescer.aclose``)."""
        await self._claims.aclose()

    async def first_use(self, signature: str, timestamp: str, *, now: float | None = None) -> bool:
        """Claim a verified request's signature; False if a worker already took this request.

        Raises ``RedisError``/``OSError`` when Redis cannot say: the caller must not dispatch then.
        """
        now = time.time() if now is None else now
        # Valid until timestamp + window on this worker's clock; a minute more for other workers' clocks.
        ttl = int(int(timestamp) + SIGNATURE_WINDOW - now) + keys.SIGNED_REQUEST_SKEW
        ttl = max(ttl, keys.SIGNED_REQUEST_SKEW)
        claimed = await self._claims.get((keys.signed_request(signature), ttl))
        return bool(claimed)
