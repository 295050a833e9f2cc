"""RequestThreads: what the bot says and reads in a request's thread, and its private notes.

Reminders when an escalation step fires, the outcome once a request ends
(where people talked), and the people's replies read back for the audit log
and the model.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from .. import metrics, text
from ..approvals.audit import AuditLog
from ..approvals.model import SYSTEM_ACTOR, ApprovalRequest, Reply, is_group
from ..approvals.names import AuditEvent
from ..approvals.store import RequestStore
from ..logs import about
from .budget import Priority, priority
from .directory import Directory
from .errors import described, logged
from .identity import TrustedOrgs, author_of
from .messages import RequestMessages
from .payloads import is_person_reply
from .retries import is_transient
from .workspaces import Workspaces

log = logging.getLogger(__name__)


class RequestThreads:
    """Thread posts and reads for requests' messages, and ephemeral notes to people."""

    def __init__(
        self,
        store: RequestStore,
        client: AsyncWebClient,
        *,
        directory: Directory,
        messages: RequestMessages,
        orgs: TrustedOrgs | None = None,
        workspaces: Workspaces | None = None,
    ) -> None:
        """``orgs``: whose thread replies reach the model (None: everyone's, as events were checked);
        ``workspaces`` (OAuth mode): of those, only the request's own workspace's people."""
        self.store = store
        self.client = client
        self.directory = directory
        self.messages = messages
        self.audit = AuditLog(store.redis)
        self.orgs = orgs
        self.workspaces = workspaces

    async def remind(self, request_id: str, steps: str) -> None:
        """Escalation steps fired (``steps``: their indexes, as the reminder job carries them):
        mention their approvers in the thread, show them on the message."""
        request = await self.store.get(request_id)
        if request is None or not request.posted or request.state.is_final:
            return
        fired = [int(i) for i in steps.split()]
        added = [t for i in fired if i < len(request.escalation) for t in request.escalation[i]["approvers"]]
        await self.directory.warm(a for a in added if is_group(a))
        await self.messages.converge(request.id)
        reminder = text.message.reminder(
            request, list(dict.fromkeys(added)), time.time() - request.created_at
        )
        await self.say(request, reminder)

    async def conclude(self, request: ApprovalRequest) -> None:
        """Once per request: the discussion in the audit log and, where people
        talked in the thread, the outcome there too.

        The card itself shows the outcome, so a thread nobody wrote in gets no
        line (each write is a call from Slack's rate limits). The thread is read
        from Slack only when replies were heard (``message`` events) since it was
        last read: usually not at all, at most once per decision."""
        if not await self.store.claim_announcement(request.id):
            return
        try:
            # First: reading is idempotent, the post is not.
            heard, read = await self.store.thread_counts(request.id)
            if heard > read:
                with priority(Priority.AUDIT):
                    replies = await self.gather(request)
            else:
                replies = await self.store.discussion(request.id) if heard else []
            if replies:
                with priority(Priority.REMIND):
                    await self.say(request, text.message.outcome_line(request))
        except Exception:
            await self.store.release_announcement(request.id)
            raise
        metrics.request_ended(request)  # once per request: the claim above holds from here on
        if replies:
            said = [{"user": r.user, "name": r.name, "text": r.text, "ts": r.ts} for r in replies]
            await self.audit.append(
                AuditEvent.DISCUSSION,
                actor=SYSTEM_ACTOR,
                request=request.id,
                input_hash=request.input_hash,
                state=request.state.value,
                replies=json.dumps(said, ensure_ascii=False)[: text.decision.DISCUSSION_AUDIT_LIMIT],
            )

    async def gather(self, request: ApprovalRequest) -> list[Reply]:
        """Read the thread from Slack (``conversations.replies``) and keep the people's replies."""
        bot_user = await self.messages.bot_user()
        replies: list[Reply] = []
        cursor = None
        while True:
            try:
                page = await self.client.conversations_replies(
                    channel=request.posted_channel, ts=request.ts, cursor=cursor, limit=200
                )
            except SlackApiError as exc:
                if is_transient(exc):
                    raise
                log.warning(
                    "request %s: thread unreadable: %s",
                    request.id,
                    described(exc),
                    extra=logged(exc, **about(request)),
                )
                break
            found: list[dict[str, Any]] = page.get("messages", [])
            for message in found:
                if message.get("ts") == request.ts or not is_person_reply(message, bot_user):
                    continue
                author = author_of(message)
                if self.orgs is not None and (author is None or not self.orgs.allows(author)):
                    continue  # another organisation's reply (Slack Connect), or one that says not whose
                if self.workspaces is not None and not await self.workspaces.may_decide(author, request):
                    continue  # another served workspace's, in a channel both share
                user = message["user"]
                replies.append(
                    Reply(message["ts"], user, await self.directory.name(user), message.get("text", ""))
                )
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        await self.store.add_replies(request.id, replies)
        discussion = await self.store.discussion(request.id)
        await self.store.thread_read(request.id, len(discussion))
        return discussion

    async def say(self, request: ApprovalRequest, message: str) -> None:
        """Post ``message`` in the request's thread."""
        await self.client.chat_postMessage(
            channel=request.posted_channel,
            thread_ts=request.ts,
            text=message,
            unfurl_links=False,
            unfurl_media=False,
        )

    async def notify(self, channel: str, user: str, message: str) -> None:
        """Show ``message`` to ``user`` alone, in ``channel`` (an ephemeral message)."""
        try:
            await self.client.chat_postEphemeral(channel=channel, user=user, text=message)
        except SlackApiError as exc:
            if is_transient(exc):
                raise
            log.warning(
                "ephemeral to %s failed: %s",
                user,
                described(exc),
                extra=logged(exc, user=user),
            )
