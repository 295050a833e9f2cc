"""Slack's Web API rate limits, in one place (docs.slack.dev, "Rate limits").

Limits apply per app *per workspace*: every worker of one installation shares
them. Slack publishes tiers as "N+ per minute" and allows short bursts above
the sustained rate; a call past the limit gets HTTP 429 with ``Retry-After``.
The figures below are the documented floors, so staying within them is safe.

The workers' shared budget, the tests' fake Slack and the benchmark's
stand-in all read this table, so the product and its test doubles agree on
what Slack allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Rate:
    """A token bucket: ``burst`` calls at once, refilled at ``per_minute``."""

    per_minute: float
    burst: int
    per_channel: bool = False
    """Counted separately for each channel (``chat.postMessage``)."""

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0

    def scaled(self, factor: float) -> Rate:
        """The same limit ``factor`` times faster (tests and benchmarks run it sped up)."""
        return replace(self, per_minute=self.per_minute * factor)

    def with_headroom(self) -> Rate:
        """The bucket the workers keep: ``HEADROOM`` call short of Slack's burst, at
        least one. Slack counts a call when it arrives and the workers when they
        send it; calls sent in order may arrive a little out of step, and the spare
        call in Slack's bucket absorbs that instead of drawing a 429."""
        return replace(self, burst=max(1, self.burst - HEADROOM))

    def minimum_seconds(self, calls: int) -> float:
        """The least time ``calls`` calls can take, from a full bucket, within this limit."""
        return max(0, calls - self.burst) / self.per_second


HEADROOM = 1
"""Calls the workers' budget keeps short of each documented burst (``Rate.with_headroom``)."""


def retry_after_header(wait: float) -> str:
    """``Retry-After`` for a call refused ``wait`` seconds before the limit allows it:
    whole seconds, rounded up, never 0 (Slack's header is an integer; at a test's
    sped-up rates most waits are a fraction of a second, and they round to 1 rather
    than to "retry at once", which would only draw the next 429)."""
    return str(max(1, math.ceil(wait)))


TIER_1 = Rate(per_minute=1, burst=1)
TIER_2 = Rate(per_minute=20, burst=3)
TIER_3 = Rate(per_minute=50, burst=5)
TIER_4 = Rate(per_minute=100, burst=10)

POST_PER_CHANNEL = Rate(per_minute=60, burst=2, per_channel=True)
"""``chat.postMessage``: about one message a second per channel, short bursts allowed."""
POSTS_PER_WORKSPACE = "chat.postMessage:workspace"
"""Key of the workspace-wide cap on ``chat.postMessage`` ("several hundred a minute")."""

RATES: dict[str, Rate] = {
    "chat.postMessage": POST_PER_CHANNEL,
    POSTS_PER_WORKSPACE: Rate(per_minute=300, burst=20),
    "chat.update": TIER_3,
    "chat.delete": TIER_3,
    "chat.getPermalink": TIER_4,
    "chat.postEphemeral": TIER_4,
    "conversations.replies": TIER_3,
    "conversations.history": TIER_3,
    "conversations.info": TIER_3,
    "views.open": TIER_4,
    "views.update": TIER_4,
    "views.push": TIER_4,
    "views.publish": TIER_4,
    "users.info": TIER_4,
    "usergroups.users.list": TIER_2,
    # "Special": "hundreds of requests per minute" (docs.slack.dev, auth.test).
    "auth.test": Rate(per_minute=200, burst=20),
    "auth.teams.list": TIER_2,
}
"""Method → its limit. A method not listed here is treated as Tier 3."""


def rate_for(method: str) -> Rate:
    """The limit Slack applies to ``method``."""
    return RATES.get(method, TIER_3)
