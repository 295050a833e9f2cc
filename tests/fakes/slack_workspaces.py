"""The fake Slack with several workspaces and Slack's OAuth install: ``oauth.v2.access``.

``FakeSlack`` serves one workspace (``TEAM_ID``) with one bot token. Here each
install mints a bot token of its own, and a token sees only its workspace's
channels (an org-wide install's: every workspace of its organisation): posting
with workspace A's token to B's channel gets ``channel_not_found``, as in Slack.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from aiohttp import web

from .slack_api import FakeSlack
from .slack_records import SlackCall
from .slack_requests import Reject
from .slack_workspace import BOT_ID, TEAM_ID, FakeChannel

CLIENT_ID = "1111.2222"
CLIENT_SECRET = "fake-client-secret"
APP_ID = "A0APPROVALS"
INSTALLER = "U0INSTALLER"

TEAM_B = "T0TEAMB"
"""A second workspace, with its own approval channel ``CHANNEL_B``."""
CHANNEL_B = "C0BAPPROVALS"
ENTERPRISE = "E0GRID"
"""An Enterprise Grid organisation (``org_workspaces`` says which workspaces are in it)."""


class WorkspacesSlack(FakeSlack):
    """``FakeSlack`` plus installs: ``authorize`` stands for a person clicking Allow on Slack's
    authorize page; ``oauth.v2.access`` exchanges the code for a bot token, once."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client_id, self.client_secret = CLIENT_ID, CLIENT_SECRET
        self.installed: dict[str, str] = {self.token: TEAM_ID}
        """Bot token → the workspace (``T…``) or organisation (``E…``) it was installed in."""
        self.channel_team: dict[str, str] = {}
        """Channel → its workspace; channels not listed are ``TEAM_ID``'s."""
        self.org_workspaces: dict[str, str] = {}
        """Workspace → its organisation."""
        self._codes: dict[str, dict[str, Any]] = {}
        self._acting = TEAM_ID
        self._handlers["auth.teams.list"] = self._auth_teams_list

    def add_workspace_channel(self, channel_id: str, name: str, team: str) -> FakeChannel:
        self.channel_team[channel_id] = team
        return self.add_channel(channel_id, name)

    def authorize(self, team: str | None, enterprise: str | None = None, *, user: str = INSTALLER) -> str:
        """A code for an install by ``user`` in ``team`` (``team=None``: org-wide, in ``enterprise``)."""
        code = secrets.token_hex(8)
        token = f"xoxb-{team or enterprise}-{secrets.token_hex(6)}"
        self._codes[code] = {
            "access_token": token,
            "token_type": "bot",
            "scope": "chat:write,channels:read,groups:read,channels:history,groups:history,users:read,"
            "usergroups:read,commands",
            "bot_user_id": "U0BOT" + (team or enterprise or ""),
            "app_id": APP_ID,
            "team": {"name": team.lower(), "id": team} if team else None,
            "enterprise": {"name": enterprise.lower(), "id": enterprise} if enterprise else None,
            "authed_user": {"id": user},
            "is_enterprise_install": team is None,
        }
        return code

    def token_of(self, where: str) -> str:
        return next(token for token, owner in self.installed.items() if owner == where)

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["method"] != "oauth.v2.access":
            return await super()._handle_api(request)
        # The app authenticates with its client id and secret (HTTP Basic, as slack_sdk sends them).
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        given = base64.b64decode(encoded).decode() if scheme == "Basic" else ""
        args = dict(await request.post())
        if given != f"{self.client_id}:{self.client_secret}":
            body: dict[str, Any] = {"ok": False, "error": "invalid_client_id"}
        else:
            answer = self._codes.pop(str(args.get("code", "")), None)  # a code is good once
            body = {"ok": True, **answer} if answer else {"ok": False, "error": "invalid_code"}
            if answer:
                self.installed[answer["access_token"]] = (
                    answer["team"]["id"] if answer["team"] else answer["enterprise"]["id"]
                )
        await self._record(SlackCall("oauth.v2.access", {"code": args.get("code")}, 200, body))
        return web.json_response(body)

    def _answer(
        self, method: str, args: dict[str, Any], token: str | None
    ) -> tuple[int, Any, dict[str, str]]:
        owner = self.installed.get(token or "")
        if owner is None:
            return super()._answer(method, args, token)
        # No awaits from here to the answer: _acting holds for this one call.
        self._acting = owner
        try:
            return super()._answer(method, args, self.token)
        finally:
            self._acting = TEAM_ID

    def _channel(self, channel: Any, *, posting: bool = False) -> FakeChannel:
        found = super()._channel(channel, posting=posting)
        team = self.channel_team.get(found.id, TEAM_ID)
        if found.id.startswith("D") or self._acting in (team, self.org_workspaces.get(team)):
            return found
        raise Reject("channel_not_found")  # another workspace's channel does not exist for this token

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        answer = super()._auth_test(args)
        acting = self._acting
        if acting == TEAM_ID:
            return answer
        org_wide = acting.startswith("E")
        return {
            **answer,
            "url": f"https://{acting.lower()}.slack.com/",
            "team_id": "" if org_wide else acting,
            "enterprise_id": acting if org_wide else self.org_workspaces.get(acting),
            "bot_id": BOT_ID,
            "is_enterprise_install": org_wide,
        }

    def _auth_teams_list(self, args: dict[str, Any]) -> dict[str, Any]:
        """The workspaces an org-wide install was granted (one page)."""
        if not self._acting.startswith("E"):
            raise Reject("not_allowed_token_type")
        teams = [t for t, org in self.org_workspaces.items() if org == self._acting]
        return {
            "teams": [{"id": t, "name": t.lower()} for t in teams],
            "response_metadata": {"next_cursor": ""},
        }
