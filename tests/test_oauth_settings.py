"""OAuth mode's settings: what turns it on, what ``serve`` then needs, and the scopes an install asks for."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot import SlackApprover
from bot.approvals.model import request_id_for
from bot.approvals.store import RequestStore
from bot.settings import MissingSetting, Settings
from bot.slack.oauth import BOT_SCOPES, authorize_url
from bot.web import serve_settings_required
from tests.fakes.redis_server import RedisServer
from tests.test_gate import gate, hook_input, transcript


def test_single_token_mode_is_the_default() -> None:
    settings = Settings(_env_file=None)
    assert not settings.oauth
    assert serve_settings_required(settings) == (
        "redis_url",
        "slack_bot_token",
        "approval_channel",
        "slack_signing_secret",
    )


def test_client_id_and_secret_turn_oauth_mode_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_CLIENT_ID", "1111.2222")
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "the-client-secret")
    monkeypatch.setenv("SLACK_WORKSPACES", '{"T0A":{"channel":"C0A"},"E0ORG":{"channel":"C0ORG"}}')
    settings = Settings(_env_file=None)
    assert settings.oauth
    assert {team: w.channel for team, w in settings.slack_workspaces.items()} == {
        "T0A": "C0A",
        "E0ORG": "C0ORG",
    }
    assert serve_settings_required(settings) == ("redis_url", "slack_workspaces", "slack_signing_secret")
    assert "the-client-secret" not in repr(settings)


def test_oauth_mode_needs_the_workspaces() -> None:
    settings = Settings(
        _env_file=None,
        redis_url="redis://localhost",
        slack_client_id="1111.2222",
        slack_client_secret="secret",
    )
    with pytest.raises(MissingSetting, match="SLACK_WORKSPACES"):
        settings.require(*serve_settings_required(settings))


def test_the_install_asks_for_the_manifests_scopes() -> None:
    manifest = yaml.safe_load((Path(__file__).resolve().parents[1] / "manifest.yml").read_text())
    assert list(BOT_SCOPES) == manifest["oauth_config"]["scopes"]["bot"]
    assert manifest["settings"]["org_deploy_enabled"] is True
    assert manifest["oauth_config"]["redirect_urls"][0].endswith("/slack/oauth_redirect")


def test_slacks_authorize_page_is_next_to_its_api() -> None:
    assert authorize_url("https://slack.com/api/") == "https://slack.com/oauth/v2/authorize"
    assert authorize_url("http://127.0.0.1:8080/api/") == "http://127.0.0.1:8080/oauth/v2/authorize"


def test_the_gate_hook_asks_in_the_approvers_workspace() -> None:
    """In defer mode the hook creates the requests: it is told the workspace ``SlackApprover(team=…)`` names."""
    approver = SlackApprover("redis://localhost:6379/0", team="T0B")
    assert approver.options().env["SLACK_TEAM_ID"] == "T0B"
    assert "SLACK_TEAM_ID" not in SlackApprover("redis://localhost:6379/0").options().env


@pytest.mark.slow
async def test_the_gate_hook_reads_its_workspace_from_the_environment(
    redis_server: RedisServer, store: RequestStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_TEAM_ID", "T0B")
    call = hook_input("toolu_team", transcript=transcript(tmp_path, "toolu_team"))
    run = await gate(redis_server.url, call, "--wait", "0.3", entrypoint="sdk-cli")
    assert run.decision["permissionDecision"] == "defer"
    request = await store.get(request_id_for("toolu_team"))
    assert request is not None and request.team == "T0B"
