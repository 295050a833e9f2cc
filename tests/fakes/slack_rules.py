"""Slack's documented time and use limits, as the fake enforces them."""

TRIGGER_TTL = 3.0
"""Seconds a ``trigger_id`` opens a view after the click that minted it (docs.slack.dev)."""
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60
"""A ``response_url`` answers at most 5 times, within 30 minutes of the click (docs.slack.dev)."""
DEFAULT_RATE_SCALE = 20.0
"""How much faster than Slack's documented limits the fake enforces them unless told
otherwise: realistic shape (bursts, per-channel posts, tiers), a fast suite."""
