"""Settings, read once from the environment (and ``.env``) and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .approvals.bounds import MAX_SECONDS
from .redis_topology import Topology, parse_sentinels


class MissingSetting(Exception):
    """A command needs a setting that is not set."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"{name} is not set: {why}")
        self.name = name


class Workspace(BaseModel):
    """Where one workspace's (or org-wide install's) requests go, in OAuth mode."""

    channel: str
    """Its approval channel (``C…``), in that workspace."""
    policy: Path | None = None
    """Its own team rules (a file like ``approval_policy``'s) for routing its requests;
    unset: ``approval_policy``'s."""


class Settings(BaseSettings):
    """Configuration of both halves.

    Field names map to environment variables of the same name in upper case
    (``redis_url`` ← ``REDIS_URL``). The agent side reads only the Redis and
    timeout settings; Slack secrets live only on the bot workers.
    """

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    slack_bot_token: SecretStr | None = None
    """Bot token (``xoxb-…``) the workers post with."""
    slack_signing_secret: SecretStr | None = None
    """Verifies that requests to ``/slack/events`` come from Slack."""
    slack_app_token: SecretStr | None = None
    """App-level token (``xapp-…``): when set, ``serve`` uses Socket Mode instead of HTTP."""
    slack_client_id: str | None = None
    """With ``slack_client_secret``: OAuth mode. The workers serve ``/slack/install`` and
    ``/slack/oauth_redirect`` and post with each workspace's own token, not ``slack_bot_token``."""
    slack_client_secret: SecretStr | None = None
    """The app's client secret (Basic Information), for ``oauth.v2.access``."""
    slack_redirect_uri: str | None = None
    """``https://…/slack/oauth_redirect``; unset: the one Redirect URL the app lists."""
    slack_workspaces: dict[str, Workspace] = {}
    """OAuth mode: the workspaces (``T…``) and org-wide installs (``E…``) served, each with its
    approval channel, as JSON: ``{"T0123":{"channel":"C0456"}}``. Slack may install the app
    only there."""
    slack_team_id: str = ""
    """Agent side, OAuth mode: the workspace (``T…``) or org-wide install (``E…``) its
    requests are for, one of ``slack_workspaces``."""
    slack_api_url: str = "https://slack.com/api/"
    """Web API base URL; tests and proxies point it elsewhere."""
    redis_url: str | None = None
    """Where requests, jobs and decisions live; shared by agents and workers."""
    redis_cluster: bool = False
    """``REDIS_URL`` names a node of a Redis Cluster (as does a ``redis+cluster://`` URL)."""
    redis_sentinels: str = ""
    """``host:port,…`` of Sentinels watching the primary: clients ask them where it is and
    follow a failover. ``REDIS_URL`` then gives only password, database and TLS."""
    redis_sentinel_master: str = ""
    """The name the Sentinels monitor the primary under (needed with ``redis_sentinels``)."""
    redis_wait_replicas: int = 0
    """Replicas that must acknowledge a decision (``WAIT``) before an agent acts on it and a click
    is confirmed; 0: the primary's word is enough."""
    approval_channel: str | None = None
    """Channel id (``C…``) the workers post requests to."""
    approval_policy: Path | None = None
    """YAML or TOML file of team rules (routing, approvers, N-of-M, cost, escalation).
    Unset: every request goes to ``approval_channel`` and anyone there may decide."""
    approval_timeout: float = Field(default=86400, ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    """Seconds a request waits for a decision before it is denied as expired; 0 waits forever."""
    port: int = Field(default=3000, ge=1, le=65535)
    """HTTP port of ``serve`` (``/slack/events``, ``/healthz``)."""

    redis_max_connections: int | None = Field(default=None, ge=2)
    """Connections a process may open to Redis, subscriptions included; more callers queue.
    Unset: 3 for an agent process, 52 for a worker (at least 16: one per shard's job reader, and more)."""
    job_retry_after: float = Field(default=60, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    """Seconds before a job a worker took but did not finish is taken over by another."""
    sweep_interval: float = Field(default=1.0, gt=0, le=3600, allow_inf_nan=False)
    """How often each worker looks for expired requests and abandoned jobs."""

    slack_rate_scale: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    """Slack's documented rate limits times this, for the workers' shared budget. 1 in a real
    workspace; test doubles and the benchmark run Slack's limits sped up and set it to match."""

    http_max_connections: int = Field(default=1000, ge=2)
    """Client connections one ``serve`` worker holds at once. Never more than half its
    open-file limit, so Redis and Slack keep file descriptors however many clients connect."""
    http_header_timeout: float = Field(default=10, gt=0, allow_inf_nan=False)
    """Seconds a client has, once it starts a request, to send its request line and headers."""
    http_body_timeout: float = Field(default=10, gt=0, allow_inf_nan=False)
    """Seconds a client has to send a request's body once its headers arrived."""
    http_keepalive_timeout: float = Field(default=75, gt=0, allow_inf_nan=False)
    """Seconds an idle connection stays open. Above the usual load balancer idle timeout
    (60 s), so the balancer, not the worker, closes idle connections."""
    http_max_body: int = Field(default=1024 * 1024, ge=1024)
    """Bytes a request body may have (a 413 beyond). Slack's payloads are far smaller."""

    log_format: Literal["text", "json"] = "text"
    """How ``serve``, ``check`` and ``audit`` write log lines to stderr: ``text`` for people, or
    ``json``, one object per line for a log pipeline (``bot.logs``). The gate's stderr is read
    by the model, so it always stays short text."""

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        # slack_sdk joins base_url and method name without adding a slash.
        return value if value.endswith("/") else value + "/"

    @property
    def oauth(self) -> bool:
        """Whether the workers serve Slack's OAuth flow (many workspaces) instead of one bot token."""
        return bool(self.slack_client_id and self.slack_client_secret)

    def redis_topology(self) -> Topology:
        """How the Redis of ``redis_url`` is deployed, for ``redis_client.connect``."""
        return Topology(
            cluster=self.redis_cluster,
            sentinels=parse_sentinels(self.redis_sentinels),
            sentinel_master=self.redis_sentinel_master,
            wait_replicas=self.redis_wait_replicas,
        )

    def require(self, *names: str) -> None:
        """Raise ``MissingSetting`` for the first of ``names`` that is unset."""
        for name in names:
            value = getattr(self, name)
            if (
                value is None
                or value == {}
                or (isinstance(value, SecretStr) and not value.get_secret_value())
            ):
                raise MissingSetting(name.upper(), _WHY.get(name, "required here"))

    def required(self, name: str) -> str:
        """The value of the plain-text setting ``name``; ``MissingSetting`` if it is unset."""
        self.require(name)
        value = getattr(self, name)
        if not isinstance(value, str):
            raise TypeError(f"{name} is not a plain-text setting")
        return value


REDIS_TOPOLOGY = ("redis_cluster", "redis_sentinels", "redis_sentinel_master", "redis_wait_replicas")
"""The settings besides ``redis_url`` that say how to reach Redis (``Settings.redis_topology``)."""

_WHY = {
    "redis_url": "agents and workers share requests through Redis (e.g. redis://localhost:6379/0)",
    "slack_bot_token": "the bot token (xoxb-…) from the Slack app's OAuth & Permissions page",
    "slack_signing_secret": "the signing secret from the Slack app's Basic Information page",
    "approval_channel": "the id of the channel to post approval requests to (e.g. C0123456789)",
    "slack_workspaces": 'with SLACK_CLIENT_ID, the workspaces served: {"T0123":{"channel":"C0456"}}',
}
