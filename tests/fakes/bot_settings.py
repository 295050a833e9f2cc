"""The bot's settings in a test: a deployment's, pointed at the test's redis-server and fake Slack."""

from __future__ import annotations

from typing import Any

from bot import Settings
from tests.fakes.redis_cluster import Cluster, OneNodeCluster
from tests.fakes.redis_server import RedisServer
from tests.fakes.slack_api import FakeSlack

SIGNING_SECRET = "test-signing-secret"
CHANNEL = "C0APPROVALS"

UNLIMITED_RATE_SCALE = 1e6
"""The bot's ``slack_rate_scale`` against a fake without rate limits (so, in effect, none)."""


def settings_for(
    redis_server: RedisServer | OneNodeCluster | Cluster, slack: FakeSlack, **overrides: Any
) -> Settings:
    """Settings as a deployment would set them, pointed at the test's servers (no .env)."""
    values: dict[str, Any] = {
        "redis_url": redis_server.url,
        "slack_bot_token": slack.token,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": slack.base_url,
        "approval_channel": CHANNEL,
        "approval_timeout": 60,
        "job_retry_after": 30,
        "sweep_interval": 0.05,
        # The budget runs at the speed the fake enforces Slack's limits at.
        "slack_rate_scale": slack.rate_scale or UNLIMITED_RATE_SCALE,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)
