"""Slash command payloads: what Slack form-posts when someone types the bot's command."""

from __future__ import annotations

from tests.fakes.slack_payload_parts import VERIFICATION_TOKEN, trigger_id, unique
from tests.fakes.slack_workspace import APP_ID, TEAM_DOMAIN, TEAM_ID


def slash_command(
    user_id: str,
    command: str,
    text: str = "",
    *,
    channel: str = "C0APPROVALS",
    team_id: str = TEAM_ID,
    enterprise_id: str | None = None,
    org_wide: bool = False,
) -> dict[str, str]:
    """What Slack form-posts for a slash command (``team_id``: the workspace of whoever typed it;
    ``enterprise_id``: its organisation; ``org_wide``: the app is installed org-wide)."""
    form = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel,
        "channel_name": "approvals",
        "user_id": user_id,
        "user_name": user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "true" if org_wide else "false",
        "response_url": f"https://hooks.slack.com/commands/{TEAM_ID}/{unique()}/fake",
        "trigger_id": trigger_id(),
    }
    if enterprise_id is not None:
        form.update(enterprise_id=enterprise_id, enterprise_name=enterprise_id.lower())
    return form
