"""Slack's rate limits as the benchmark's stand-in (and the tests' fake Slack) enforce them:
token buckets from ``bot.slack.rates``.

Slack counts calls per app per workspace, per method, and ``chat.postMessage``
per channel as well as against a workspace-wide cap. A call that finds any of
its buckets empty is refused with HTTP 429 and a ``Retry-After`` in whole
seconds, and takes no token (docs.slack.dev, "Rate limits"). Every bucket
starts full; ``reset()`` fills them again so a phase starts from the limits'
best case, the case ``Rate.minimum_seconds`` describes.

A call may come up to ``GRACE`` seconds before its token: a worker that paces
itself exactly to the rates decides when to send, the stand-in sees when the
call arrives, and loopback delays vary by more than nothing. The sustained rate
is unchanged (the bucket goes that little below empty); Slack's published
rates are floors ("50+ per minute"), so the stand-in is still the strict side.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from ..slack.rates import POSTS_PER_WORKSPACE, Rate, rate_for, retry_after_header

POST_METHOD = "chat.postMessage"
GRACE = 0.05


@dataclass
class _Bucket:
    rate: Rate
    tokens: float
    at: float

    def refill(self, now: float) -> None:
        self.tokens = min(float(self.rate.burst), self.tokens + (now - self.at) * self.rate.per_second)
        self.at = now

    def wait(self, grace: float) -> float:
        """Seconds until one token is there, less ``grace`` (0 or less: a call may go now)."""
        return (1 - self.tokens) / self.rate.per_second - grace


class SlackLimits:
    """Every bucket a workspace has, Slack's documented rates sped up ``scale`` times."""

    def __init__(self, scale: float, *, grace: float = GRACE) -> None:
        """``grace``: how early before its token a call may come (``GRACE``; the tests' fake, in
        the same process as the bot it answers, allows none)."""
        if not scale > 0:
            raise ValueError("the rate scale must be positive")
        self.scale = scale
        self.grace = grace
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def rate(self, key: str) -> Rate:
        """The limit of a method (or of ``POSTS_PER_WORKSPACE``), sped up."""
        return rate_for(key).scaled(self.scale)

    def reset(self) -> None:
        """Every bucket full again."""
        self._buckets.clear()

    def take(self, method: str, channel: str, now: float | None = None) -> int:
        """Spend one call of ``method`` (in ``channel``): 0 if allowed, else Slack's ``Retry-After`` seconds."""
        now = time.monotonic() if now is None else now
        buckets = [self._bucket(method, channel if rate_for(method).per_channel else "", now)]
        if method == POST_METHOD:
            buckets.append(self._bucket(POSTS_PER_WORKSPACE, "", now))
        wait = max(bucket.wait(self.grace) for bucket in buckets)
        if wait > 0:
            # Slack says whole seconds, rounded up: a retry after it always finds a token.
            return int(retry_after_header(wait))
        for bucket in buckets:
            bucket.tokens -= 1
        return 0

    def _bucket(self, key: str, channel: str, now: float) -> _Bucket:
        bucket = self._buckets.get((key, channel))
        if bucket is None:
            rate = self.rate(key)
            bucket = self._buckets[(key, channel)] = _Bucket(rate, float(rate.burst), now)
        else:
            bucket.refill(now)
        return bucket


def minimum_post_seconds(posts_per_channel: Mapping[str, int], scale: float) -> float:
    """The least time Slack's limits allow for these request posts, from full buckets.

    The slowest channel's share, or the workspace cap over all of them if that binds."""
    limits = SlackLimits(scale)
    per_channel = max(
        (limits.rate(POST_METHOD).minimum_seconds(n) for n in posts_per_channel.values()), default=0.0
    )
    workspace = limits.rate(POSTS_PER_WORKSPACE).minimum_seconds(sum(posts_per_channel.values()))
    return max(per_channel, workspace)
