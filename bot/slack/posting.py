"""RequestPoster: a request's one Slack message, posted once (or adopted from an earlier attempt).

A request is routed first (``approvals.routing``): the policy or the team
allow-list may decide it without a post. Then its card is posted, with the
request id in the message's metadata, so a retry after a worker died
mid-post finds the card it sent and keeps it instead of posting a second one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from redis.exceptions import RedisError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from ..approvals.model import ApprovalRequest, Decision, State, is_group
from ..approvals.routing import Router
from ..approvals.store import RequestStore
from ..logs import Event, about, tagged
from ..tasks import describe
from .directory import Directory
from .errors import described, error_code, logged
from .ids import REQUEST_METADATA_EVENT
from .messages import RequestMessages, digest
from .retries import is_transient
from .workspaces import NOT_SERVED

log = logging.getLogger(__name__)

POST_CLOCK_SKEW = 60.0
"""Seconds before a post attempt's own clock that its message's ts may carry (hosts' clocks differ)."""
ADOPT_PAGES = 5
"""Pages of channel history searched for a message an earlier attempt posted."""


class RequestPoster:
    """Routes a request and posts its message, once."""

    def __init__(
        self,
        store: RequestStore,
        client: AsyncWebClient,
        *,
        router: Router,
        directory: Directory,
        messages: RequestMessages,
        default_channel: str,
        channels: Mapping[str, str] | None = None,
    ) -> None:
        """``channels``: OAuth mode's approval channel of each workspace (``SLACK_WORKSPACES``), the
        only workspaces whose requests are posted (or routed at all)."""
        self.store = store
        self.client = client
        self.router = router
        self.directory = directory
        self.messages = messages
        self.default_channel = default_channel
        self.channels = channels or {}

    async def post(self, request_id: str, *, may_retry: bool) -> None:
        """Route the request if it is not yet, then post it unless that decided it.

        Raises on a failure a retry may mend while ``may_retry``; otherwise a
        request Slack will not take is ended undeliverable."""
        request = await self.store.get(request_id)
        if request is not None and request.posted:
            # Done by another worker, or by this job's earlier attempt, which may have
            # died before it linked the thread: link it (again, harmlessly).
            await self.store.link_thread(request_id, request.posted_channel, request.ts)
            return
        if request is None or request.state.is_final:
            return  # gone, or ended before anyone saw it
        if self.channels and request.team not in self.channels:
            await self._not_served(request)
            return
        if not request.routed:
            request = await self._route(request)  # warms the route's approver groups too
            if request is None or request.state.is_final:
                return  # the policy decided it without asking anyone
        else:
            # Before the post: the first click checks membership against this cache.
            await self.directory.warm(a for a in request.approvers if is_group(a))
        channel = request.channel or self.channels.get(request.team) or self.default_channel
        if request.post_started and await self._adopt(request, channel):
            return
        await self.store.start_posting(request_id)
        message = await self.messages.render(request)
        try:
            response = await self.client.chat_postMessage(
                channel=channel,
                text=message.text,
                blocks=message.blocks,
                unfurl_links=False,
                unfurl_media=False,
                metadata={"event_type": REQUEST_METADATA_EVENT, "event_payload": {"request_id": request_id}},
            )
        except Exception as exc:
            if is_transient(exc) and may_retry:
                raise
            reason = error_code(exc) if isinstance(exc, SlackApiError) else type(exc).__name__
            detail = described(exc) if isinstance(exc, SlackApiError) else reason
            extra = (
                logged(exc)
                if isinstance(exc, SlackApiError)
                else tagged(Event.REQUEST_UNDELIVERABLE, error=reason)
            )
            log.error(
                "request %s could not be posted to %s: %s",
                request_id,
                channel,
                detail,
                extra={**extra, **about(request), "channel": channel, "state": State.UNDELIVERABLE.value},
            )
            await self.store.decide(request_id, Decision(State.UNDELIVERABLE, reason=reason))
            return
        try:
            await self._posted(request_id, response["channel"], response["ts"], digest(message))
        except (RedisError, OSError) as exc:
            log.warning(
                "request %s: recording its message failed (%s); looking again", request_id, describe(exc)
            )
            if not await self._recorded_anyway(request_id, response["channel"], response["ts"]):
                raise

    async def _not_served(self, request: ApprovalRequest) -> None:
        """OAuth mode: a request for a workspace not served has no channel, no people and no policy
        here. Denied before routing: ``APPROVAL_POLICY`` is the served workspaces' policy, and its
        allow rules must not stand in for a workspace no one here answers for."""
        log.error(
            "request %s names workspace %r, which SLACK_WORKSPACES does not serve: denied",
            request.id,
            request.team,
            extra={**tagged(Event.REQUEST_UNDELIVERABLE, error=NOT_SERVED), **about(request)},
        )
        await self.store.decide(request.id, Decision(State.UNDELIVERABLE, reason=NOT_SERVED))

    async def _route(self, request: ApprovalRequest) -> ApprovalRequest | None:
        """Apply the policy in one atomic step with its route: allow or deny at
        once without a post, or store who must decide (``Router``)."""
        routing = await self.router.decide(request)
        # Before ROUTE, which checks each granter against this route's approver
        # groups, and before the post, whose first click does the same.
        await self.directory.warm(routing.groups)
        return await self.router.apply(request, routing)

    async def _recorded_anyway(self, request_id: str, channel: str, ts: str) -> bool:
        """Recording the message failed, or only its answer was lost: look again.

        Recorded after all: keep it. Not recorded: take it down, so the retry's
        card is the only live one. Redis still unreadable: keep it; the retry
        finds it by its metadata and adopts it (``_adopt``)."""
        try:
            stored = await self.store.get(request_id)
        except (RedisError, OSError):
            return False
        if stored is not None and stored.ts == ts:
            await self.store.link_thread(request_id, channel, ts)
            await self.messages.converge(request_id)
            return True
        with contextlib.suppress(Exception):
            await self.client.chat_delete(channel=channel, ts=ts)
        return False

    async def _posted(self, request_id: str, channel: str, ts: str, shown: str = "") -> None:
        """Record the message (``shown``: the digest of what it shows); a duplicate is
        deleted. Whatever changed while it was being posted (a vote, the end) is shown next."""
        state = await self.store.mark_posted(request_id, channel, ts, shown)
        if state is None:
            # Another worker posted it too (this job was re-claimed while the
            # first worker was still alive): keep one message.
            await self.client.chat_delete(channel=channel, ts=ts)
        else:
            log.info(
                "request %s posted to %s",
                request_id,
                channel,
                extra=tagged(Event.REQUEST_POSTED, request_id=request_id, channel=channel, ts=ts),
            )
            await self.store.link_thread(request_id, channel, ts)
            await self.messages.converge(request_id)

    async def _adopt(self, request: ApprovalRequest, channel: str) -> bool:
        """An earlier attempt began posting and never recorded the message: if
        Slack has it, record that one instead of posting a second live card.

        Reads the channel's history since the attempt (``conversations.history``
        is Tier 3, and this happens only after a worker died mid-post)."""
        cursor = None
        oldest = f"{request.post_started - POST_CLOCK_SKEW:.6f}"
        try:
            # Other apps can post metadata too: only ours is adopted.
            bot_user = await self.messages.bot_user()
            for _ in range(ADOPT_PAGES):
                page = await self.client.conversations_history(
                    channel=channel, oldest=oldest, include_all_metadata=True, limit=100, cursor=cursor
                )
                found: list[dict[str, Any]] = page.get("messages", [])
                for message in found:
                    metadata = message.get("metadata") or {}
                    payload = metadata.get("event_payload") or {}
                    if (
                        message.get("user") == bot_user
                        and metadata.get("event_type") == REQUEST_METADATA_EVENT
                        and payload.get("request_id") == request.id
                    ):
                        log.warning(
                            "request %s: adopting the message an earlier attempt posted",
                            request.id,
                            extra=tagged(Event.REQUEST_ADOPTED, **about(request), channel=channel),
                        )
                        await self._posted(request.id, channel, str(message["ts"]))
                        return True
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except SlackApiError as exc:
            if is_transient(exc):
                raise
            log.warning(
                "request %s: history unreadable (%s); posting again",
                request.id,
                described(exc),
                extra=logged(exc, **about(request)),
            )
        return False
