"""Which organisation a Slack request comes from, and whether its people may act here.

Slack signs every request with the *app's* signing secret: a valid signature
proves that Slack sent the request, not that the person works where the bot
is installed. Two kinds of signed request come from elsewhere. In a Slack
Connect channel people of other organisations see the bot's messages and can
click them, reply in their threads and submit the modals the buttons open
(their ``user.team_id`` names their own workspace; docs.slack.dev, "Slack
Connect"). And an app installed in several workspaces gets every
installation's requests signed with the same secret. Both are refused,
unless the policy's ``trusted_teams`` names that workspace or organisation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from .. import text
from ..approvals.queue import JobQueue
from .blocks.modals import notice_modal
from .errors import logged

log = logging.getLogger(__name__)

FIRST_ANSWER_WAIT = 5.0
"""Seconds a starting worker waits for ``auth.test`` before serving (refusing actions) without it."""
ORG_PAGES = 50
"""Pages of ``auth.teams.list`` read for an org-wide install (a page is up to 1,000 workspaces)."""


@dataclass(frozen=True)
class Installation:
    """Where the bot token belongs, as ``auth.test`` (and ``auth.teams.list``) say."""

    team_id: str
    enterprise_id: str | None = None
    """The Enterprise Grid organisation, for an org-wide install only."""
    workspaces: frozenset[str] = frozenset()
    """The org-wide install's workspaces."""
    url: str | None = None
    """The workspace's own address (``auth.test``'s ``url``, ``https://acme.slack.com/``):
    message links are built on it, as ``chat.getPermalink`` would answer, without a call per link."""

    @classmethod
    async def learn(cls, client: AsyncWebClient) -> Installation:
        auth = await client.auth_test()
        team = auth.get("team_id")
        if not isinstance(team, str) or not team:
            raise ValueError("auth.test named no team")
        url = auth.get("url")
        url = url if isinstance(url, str) and url.startswith("https://") else None
        if not auth.get("is_enterprise_install"):
            # A workspace install inside an Enterprise Grid trusts its workspace,
            # not the whole organisation: trusted_teams can name the organisation.
            return cls(team, url=url)
        enterprise = auth.get("enterprise_id")
        return cls(
            team,
            enterprise if isinstance(enterprise, str) and enterprise else None,
            await org_workspaces(client),
            url,
        )


async def org_workspaces(client: AsyncWebClient) -> frozenset[str]:
    """The workspaces an org-wide install was granted (clicks there carry a workspace id, ``team: null``)."""
    found: set[str] = set()
    cursor = ""
    for _page in range(ORG_PAGES):
        page = await client.auth_teams_list(cursor=cursor or None, limit=1000)
        found.update(
            t["id"] for t in page.get("teams") or [] if isinstance(t, dict) and isinstance(t.get("id"), str)
        )
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or ""
        if not cursor:
            break
    return frozenset(found)


@dataclass(frozen=True)
class Actor:
    """The workspace of whoever made a request, and its organisation when the payload ties it to one."""

    team: str | None
    enterprise: str | None = None


def _id(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def actor_of(body: Mapping[str, Any]) -> Actor | None:
    """Who made this request; None for Slack's own probes (``url_verification``, ``ssl_check``)."""
    kind = body.get("type")
    if kind == "url_verification" or "ssl_check" in body:
        return None
    if "command" in body:
        # A command runs in the workspace of the person who typed it: an app
        # not installed there offers no command to them.
        return Actor(_id(body.get("team_id")), _id(body.get("enterprise_id")))
    if kind == "event_callback":
        return _event_author(body)
    user = body.get("user")
    team = _id(user.get("team_id")) if isinstance(user, dict) else None
    if team is not None and team.startswith("E"):
        return Actor(None, team)  # a user of a whole Enterprise Grid organisation
    context = body.get("team")
    enterprise = None
    if team is not None and isinstance(context, dict) and context.get("id") == team:
        # The payload's organisation is the clicker's only when its workspace is theirs.
        organisation = body.get("enterprise")
        enterprise = _id(context.get("enterprise_id")) or (
            _id(organisation.get("id")) if isinstance(organisation, dict) else None
        )
    return Actor(team, enterprise)


def installation_of(body: Mapping[str, Any]) -> str:
    """The installation a payload came through: its organisation for an org-wide install, else
    its workspace ("" when it names neither)."""
    authorizations = body.get("authorizations")
    if isinstance(authorizations, list) and authorizations and isinstance(authorizations[0], dict):
        body = authorizations[0]  # an event: the installation it was delivered to
    # A slash command's form says "true" or "false"; a JSON payload, true or false.
    kind = "enterprise" if body.get("is_enterprise_install") in (True, "true") else "team"
    source = body.get(kind)
    found = source.get("id") if isinstance(source, dict) else body.get(f"{kind}_id")
    return found if isinstance(found, str) else ""


def author_of(message: Mapping[str, Any]) -> Actor | None:
    """The author's workspace as a message itself says (an event, or ``conversations.replies``):
    ``user_team`` in shared channels, ``team`` otherwise; None when it says neither.
    In Slack Connect ``user_team`` may be an organisation id (E…)."""
    for key in ("user_team", "team"):
        own = _id(message.get(key))
        if own is not None:
            return Actor(None, own) if own.startswith("E") else Actor(own)
    return None


def _event_author(body: Mapping[str, Any]) -> Actor:
    event = body.get("event")
    envelope_team, envelope_enterprise = _id(body.get("team_id")), _id(body.get("enterprise_id"))
    author = author_of(event) if isinstance(event, dict) else None
    if author is not None:
        if author.team is not None and author.team == envelope_team:
            return Actor(author.team, envelope_enterprise)
        return author
    if body.get("is_ext_shared_channel") is True:
        return Actor(None)  # a shared channel's event that does not say whose: nobody's
    return Actor(envelope_team, envelope_enterprise)


class TrustedOrgs:
    """Whose people may act: the installation's, and those the policy names (``trusted_teams``).

    Until the worker has learned its installation nobody may: a worker that
    cannot reach Slack at start refuses every action until it can. In OAuth mode
    there is no one installation: ``served`` (``SLACK_WORKSPACES``' ids) are trusted instead.
    """

    def __init__(self, trusted: Iterable[str] = (), *, served: Iterable[str] = ()) -> None:
        self.trust(trusted)
        self.installation: Installation | None = None
        self.served = frozenset(served)

    @property
    def known(self) -> bool:
        """Whether anyone may act yet: the installation is learned, or OAuth mode serves workspaces."""
        return self.installation is not None or bool(self.served)

    def trust(self, trusted: Iterable[str]) -> None:
        """Trust these workspaces and organisations instead (a reloaded policy's ``trusted_teams``)."""
        trusted = tuple(trusted)
        # One assignment: a check running meanwhile sees the old pair or the new, never a mix.
        self._trusted = (
            frozenset(t for t in trusted if t.startswith("T")),
            frozenset(t for t in trusted if t.startswith("E")),
        )

    def allows(self, actor: Actor) -> bool:
        installed = self.installation
        if not self.known:
            return False
        trusted_teams, trusted_organisations = self._trusted
        teams = trusted_teams | {t for t in self.served if t.startswith("T")}
        organisations = trusted_organisations | {t for t in self.served if t.startswith("E")}
        if installed is not None:
            teams |= installed.workspaces | {installed.team_id}
            organisations |= {installed.enterprise_id} if installed.enterprise_id else set()
        return (actor.team is not None and actor.team in teams) or (
            actor.enterprise is not None and actor.enterprise in organisations
        )

    async def learn(self, client: AsyncWebClient, *, retry: float = 1.0, max_retry: float = 60.0) -> None:
        """Ask Slack where the token belongs until it answers (retrying after 1 s, 2 s, … 60 s)."""
        while True:
            try:
                self.installation = await Installation.learn(client)
            except (SlackApiError, aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                log.warning(
                    "cannot learn the workspace the bot token belongs to (%s): refusing every "
                    "click, form and command until Slack answers; next try in %.0f s",
                    exc or type(exc).__name__,
                    retry,
                    extra=logged(exc) if isinstance(exc, SlackApiError) else None,
                )
            else:
                log.info("installed in %s", self.installation)
                return
            await asyncio.sleep(retry)
            retry = min(retry * 2, max_retry)


WORKSPACE_URL = "workspace_url"
"""The Bolt context key listeners find the installation's URL under (None if Slack gave none)."""


def refuse_other_orgs(
    app: AsyncApp, trust: TrustedOrgs, queue: JobQueue, *, also: OrgMember | None = None
) -> None:
    """Register a Bolt middleware (HTTP and Socket Mode alike) that stops other organisations' requests
    before any listener runs; the person is told, nothing changes. ``also`` (OAuth mode) lets in
    people of a workspace an org-wide install was granted, as that install's records say."""
    app.middleware(_OrgGate(trust, queue, also).only_trusted_orgs)


OrgMember = Callable[[Actor, Mapping[str, Any]], Awaitable[bool]]
"""Whether an actor's workspace belongs to the org-wide install the payload came through."""


class _OrgGate:
    """The middleware ``refuse_other_orgs`` registers."""

    def __init__(self, trust: TrustedOrgs, queue: JobQueue, also: OrgMember | None = None) -> None:
        self.trust = trust
        self.queue = queue
        self.also = also

    async def only_trusted_orgs(
        self, body: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        trust = self.trust
        actor = actor_of(body)
        if actor is None or trust.allows(actor) or (self.also is not None and await self.also(actor, body)):
            if trust.installation is not None:
                context[WORKSPACE_URL] = trust.installation.url
            await next()
            return None
        known = trust.known
        notice = text.refusals.FOREIGN_ORG if known else text.refusals.ORG_NOT_KNOWN_YET
        log.warning(
            "refused a Slack %s from %s: %s",
            body.get("type") or "command",
            actor,
            "not a trusted workspace" if known else "installation not known yet",
        )
        return await _refusal(body, notice, self.queue)


async def _refusal(body: dict[str, Any], notice: str, queue: JobQueue) -> BoltResponse:
    """What Slack gets back: the person is told where Slack can show it; Slack never retries a 200."""
    kind = body.get("type")
    if "command" in body:
        return BoltResponse(status=200, body={"response_type": "ephemeral", "text": notice})
    if kind == "view_submission":
        view = notice_modal(text.refusals.NOT_ALLOWED_TITLE, notice)
        return BoltResponse(status=200, body={"response_action": "update", "view": view})
    if kind == "block_actions":
        channel, user = body.get("channel"), body.get("user")
        channel_id = channel.get("id") if isinstance(channel, dict) else None
        user_id = user.get("id") if isinstance(user, dict) else None
        if isinstance(channel_id, str) and isinstance(user_id, str):
            await queue.notify(channel_id, user_id, notice, team=installation_of(body))
    # Events: a non-2xx answer makes Slack retry, then turn the subscription off.
    return BoltResponse(status=200, body="")
