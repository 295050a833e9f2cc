"""Events API: thread replies, the App Home tab, the app losing its access."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from ...approvals.audit import AuditLog
from ...approvals.model import Reply
from ...approvals.names import AuditEvent
from ...approvals.store import RequestStore
from ..blocks.lists import home_view
from ..directory import Directory
from ..identity import actor_of
from ..payloads import is_person_reply
from ..workspaces import Workspaces
from .commands import decidable, workspace_url

log = logging.getLogger(__name__)

_DECISION_EVENTS = frozenset(
    {
        AuditEvent.APPROVED,
        AuditEvent.ALWAYS_ALLOWED,
        AuditEvent.MODIFIED,
        AuditEvent.VOTE,
        AuditEvent.MODIFIED_VOTE,
        AuditEvent.ANSWERED,
        AuditEvent.ANSWER_PROPOSED,
        AuditEvent.ANSWER_VOTE,
        AuditEvent.DENIED,
    }
)
"""Audit events that are a person's decision (App Home's "recent decisions")."""


def register(
    app: AsyncApp, store: RequestStore, directory: Directory, workspaces: Workspaces | None = None
) -> None:
    listeners = EventListeners(store, directory, workspaces)
    app.event("message")(listeners.thread_reply)
    app.event("app_home_opened")(listeners.home)
    app.event("app_uninstalled")(access_lost)
    app.event("tokens_revoked")(access_lost)
    app.event("team_access_granted")(workspaces_changed)
    app.event("team_access_revoked")(workspaces_changed)


class EventListeners:
    """The listeners for events about requests, with what they read and write."""

    def __init__(
        self, store: RequestStore, directory: Directory, workspaces: Workspaces | None = None
    ) -> None:
        """``workspaces`` (OAuth mode): only a request's own people speak in its discussion."""
        self.store = store
        self.directory = directory
        self.workspaces = workspaces
        self.audit = AuditLog(store.redis)

    async def thread_reply(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        """A reply in a request's thread: kept, so the model hears the discussion on a deny."""
        thread_ts, ts, channel = event.get("thread_ts"), event.get("ts"), event.get("channel")
        if not (thread_ts and ts and channel) or thread_ts == ts:
            return
        if not is_person_reply(event, context.bot_user_id or ""):
            return  # the bot's own posts, other bots, edits and deletions
        # Slack redelivers an event it thinks was not acknowledged (up to 3 times).
        event_id = str(body.get("event_id") or "")
        if event_id and not await self.store.first_delivery(event_id):
            return
        user = event["user"]
        reply = Reply(ts, user, await self.directory.name(user), str(event.get("text") or ""))
        request_id = await self.store.request_for_thread(channel, thread_ts)
        if request_id is None:
            # A thread under some other message, or under a request message whose
            # post is not recorded yet (a reply can be that quick): held briefly.
            request_id = await self.store.hold_early_reply(channel, thread_ts, reply)
        if request_id is not None and await self._its_own(body, request_id):
            await self.store.add_replies(request_id, [reply])

    async def _its_own(self, body: dict[str, Any], request_id: str) -> bool:
        """Whether the reply's author is of the request's workspace (OAuth mode: a channel shared
        by two served workspaces carries the other's people too; the model hears its own)."""
        if self.workspaces is None:
            return True
        request = await self.store.get(request_id)
        return request is not None and await self.workspaces.may_decide(actor_of(body), request)

    async def home(self, event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext) -> None:
        # Slack sends this each time the person opens the tab: the list is read
        # afresh then, so a request decided since is not offered again.
        if event.get("tab") != "home" or not event.get("user"):
            return
        user = event["user"]
        recent = await self.audit.recent(actor=user, events=_DECISION_EVENTS, limit=15)
        view = home_view(await decidable(self.store, user), recent, workspace_url(context))
        await client.views_publish(user_id=user, view=view)


async def access_lost(event: dict[str, Any]) -> None:
    # Nothing can be posted any more: every new request will be denied as
    # undeliverable. Operators need to see this in the logs at once.
    log.error("Slack %s: approval requests can no longer be posted; reinstall the app", event.get("type"))


async def workspaces_changed(event: dict[str, Any]) -> None:
    # One bot token: an org-wide install's workspaces are learned when a worker starts (OAuth
    # mode follows these events itself: app._follow_org_grants).
    log.warning(
        "Slack %s for workspaces %s: restart the workers to follow it",
        event.get("type"),
        event.get("team_ids"),
    )
