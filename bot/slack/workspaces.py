"""OAuth mode: the workspaces served, their channels, and the token each job's Slack calls carry.

A request names its workspace (``T…``) or org-wide install (``E…``) in
``ApprovalRequest.team``. The job worker runs each job inside ``acting_for``
that installation, and ``WorkspaceClient`` signs every call of the job with
its bot token, read from the installation store: the code that posts and
updates messages stays the same for one workspace or many.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from slack_sdk.web.async_slack_response import AsyncSlackResponse

from ..approvals import record
from ..approvals.audit import AuditLog
from ..approvals.keys import request as request_key
from ..approvals.model import ApprovalRequest
from ..approvals.policy_reload import PolicyHolder
from ..settings import Settings
from .budgeted_client import BudgetedClient
from .identity import Actor, installation_of
from .installation_store import RedisInstallationStore

WORKSPACE: ContextVar[str | None] = ContextVar("workspace", default=None)
"""The installation (``T…`` or ``E…``) the running job or listener acts for ("" for none
named); None outside one (Bolt's authorization, the install flow: they pass their token)."""

NOT_SERVED = "not_served"
"""Why a request naming a workspace ``SLACK_WORKSPACES`` does not list (or none) ends undeliverable."""


class NotInstalled(Exception):
    """No bot token for the workspace a job acts for: the app is not (or no longer) installed there."""


@contextlib.contextmanager
def acting_for(workspace: str) -> Iterator[None]:
    """Slack calls made inside carry ``workspace``'s bot token (``WorkspaceClient``)."""
    reset = WORKSPACE.set(workspace)
    try:
        yield
    finally:
        WORKSPACE.reset(reset)


class Workspaces:
    """The workspaces ``SLACK_WORKSPACES`` serves, and their bot tokens in ``store``."""

    def __init__(self, settings: Settings, store: RedisInstallationStore) -> None:
        """Loads each workspace's own policy file: ``PolicyError`` if one is invalid."""
        self.channels = {team: workspace.channel for team, workspace in settings.slack_workspaces.items()}
        self.store = store
        self.policies = {
            team: PolicyHolder(workspace.policy, audit=AuditLog(store.redis))
            for team, workspace in settings.slack_workspaces.items()
            if workspace.policy is not None
        }
        """The workspaces with a policy of their own, reloaded like ``APPROVAL_POLICY``'s."""

    def serves(self, enterprise_id: str | None, team_id: str | None, org_wide: bool) -> bool:
        """Whether an installation there may be kept: an org-wide install by its organisation's id."""
        return (enterprise_id if org_wide else team_id) in self.channels

    async def token(self, workspace: str) -> str | None:
        org_wide = workspace.startswith("E")
        bot = await self.store.async_find_bot(
            enterprise_id=workspace if org_wide else None,
            team_id=None if org_wide else workspace,
            is_enterprise_install=org_wide,
        )
        return bot.bot_token if bot is not None else None

    async def team_of(self, request_id: str) -> str:
        """The workspace a request is for (one field read, before its job runs)."""
        team = await self.store.redis.hget(request_key(request_id), record.Field.TEAM)
        return team.decode() if isinstance(team, bytes) else str(team or "")

    async def may_decide(self, origin: Actor | None, request: ApprovalRequest) -> bool:
        """Whether a person of ``origin`` may decide ``request``: only its own workspace's people,
        or, for a request of an org-wide install, those of the workspaces it is granted now. A
        request naming no workspace has no one to decide it here."""
        if origin is None or not request.team:
            return False
        if not request.team.startswith("E"):
            return origin.team == request.team
        if origin.team is None:
            return origin.enterprise == request.team  # a user of the organisation itself (user.team_id E…)
        # Not the payload's enterprise: being of the organisation is not being granted to its install.
        return await self.store.in_organisation(origin.team, request.team)

    async def org_member(self, actor: Actor, body: Mapping[str, Any]) -> bool:
        """Whether ``actor``'s workspace was granted to the org-wide install ``body`` came through
        (``identity.refuse_other_orgs``' ``also``)."""
        organisation = installation_of(body)
        return (
            organisation.startswith("E")
            and organisation in self.channels
            and actor.team is not None
            and await self.store.in_organisation(actor.team, organisation)
        )


class WorkspaceClient(BudgetedClient):
    """The job worker's client in OAuth mode: each call carries the bot token of ``WORKSPACE``."""

    def __init__(self, *args: Any, workspaces: Workspaces, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workspaces = workspaces

    async def api_call(
        self, api_method: str, *, headers: dict | None = None, **kwargs: Any
    ) -> AsyncSlackResponse:
        workspace = WORKSPACE.get()
        # A call that names its own token (Bolt's authorization: auth_test(token=…)) keeps it.
        if workspace is None or _names_token(kwargs):
            return await super().api_call(api_method, headers=headers, **kwargs)
        token = await self.workspaces.token(workspace) if workspace else None
        if token is None:
            raise NotInstalled(f"the app is not installed in {workspace or 'the workspace a job names'}")
        # A request's own header wins over the client's (slack_sdk's _get_headers).
        return await super().api_call(
            api_method, headers={**(headers or {}), "Authorization": f"Bearer {token}"}, **kwargs
        )


def _names_token(call: dict[str, Any]) -> bool:
    """Whether a call's arguments carry a ``token`` (slack_sdk then sends it instead of the client's)."""
    return any(
        isinstance(call.get(part), dict) and "token" in call[part] for part in ("params", "json", "data")
    )
