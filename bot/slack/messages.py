"""RequestMessages: each request's Slack message, kept showing the request's latest state."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from ..approvals import keys
from ..approvals.model import ApprovalRequest
from ..approvals.store import RequestStore
from ..logs import Event, about, tagged
from .blocks.kit import Message
from .blocks.request_message import request_message
from .budget import Priority, priority
from .errors import described, logged
from .retries import is_transient

log = logging.getLogger(__name__)

RENDER_LOCK_POLL = 0.05
RENDER_LOCK_POLL_MAX = 2.0
"""Seconds between looks at another worker's render lock: from the first to the longest."""


def digest(message: Message) -> str:
    """What a rendering shows, in a few bytes: equal digests, same message."""
    shown = json.dumps([message.text, message.blocks], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(shown.encode()).hexdigest()[:32]


class RequestMessages:
    """Renders requests and shows them on their Slack messages (``chat.update``)."""

    def __init__(self, store: RequestStore, client: AsyncWebClient) -> None:
        self.store = store
        self.client = client
        self._bot_user_id: str | None = None

    async def bot_user(self) -> str:
        """The bot's own user id: the author of the messages it posted."""
        if self._bot_user_id is None:
            self._bot_user_id = str((await self.client.auth_test()).get("user_id") or "")
        return self._bot_user_id

    async def render(self, request: ApprovalRequest) -> Message:
        """The request's message as it should show now."""
        return request_message(request, await self._spent(request))

    async def _spent(self, request: ApprovalRequest) -> float | None:
        if request.cost is None or not request.rule:
            return None
        return await self.store.spent(request.rule, time.time())

    async def converge(self, request_id: str, *, changed: bool = False) -> ApprovalRequest | None:
        """Make the request's message show its latest state; returns the request as last read.

        Coalesces: one ``chat.update`` of the latest state stands for every change
        made before it, and a message that already shows it costs no call (the
        common case after a post). One worker at a time updates a message (a
        render lock), so an older state never lands after a newer one. Every
        change queues an update job of its own, and a job that finds the lock
        taken waits for it (``_render_lock``), then renders what is latest then:
        so a change made while another worker was updating is shown too.

        ``changed``: a transition queued this (an update job), so the message is
        almost surely behind: skip the look before taking the lock."""
        if not changed:
            request = await self.store.get(request_id)
            if request is None or not request.posted:
                return request  # the post renders the latest state itself
            if digest(await self.render(request)) == await self.store.shown(request_id):
                return request
        token = await self._render_lock(request_id)
        if token is None:
            return await self.store.get(request_id)  # not rendered: the request as it stands
        try:
            request = await self.store.get(request_id)  # the latest, now that no one else updates it
            if request is None or not request.posted:
                return request  # the post renders the latest state itself
            message = await self.render(request)
            if digest(message) != await self.store.shown(request_id) and await self.update(request, message):
                await self.store.set_shown(request_id, digest(message))
                log.info(
                    "request %s: message updated (%s)",
                    request_id,
                    request.state.value,
                    extra=tagged(Event.REQUEST_UPDATED, **about(request), state=request.state.value),
                )
        finally:
            await self.store.unlock_render(request_id, token)
        return request

    async def _render_lock(self, request_id: str) -> str | None:
        """Take the request's render lock, waiting while another worker holds it.

        Waiting usually ends in finding the message current (no call). A holder
        that died leaves the lock until it lapses (``RENDER_LOCK_TTL``): giving up
        at once would leave the message behind for good. None only if it is still
        taken after that."""
        token = secrets.token_hex(8)
        pause = RENDER_LOCK_POLL
        deadline = time.monotonic() + keys.RENDER_LOCK_TTL + RENDER_LOCK_POLL_MAX
        while not await self.store.lock_render(request_id, token):
            if time.monotonic() >= deadline:
                log.error(
                    "request %s: its message's render lock never came free",
                    request_id,
                    extra=tagged(Event.JOB_FAILED, request_id=request_id),
                )
                return None
            await asyncio.sleep(pause)
            pause = min(pause * 2, RENDER_LOCK_POLL_MAX)
        return token

    async def update(self, request: ApprovalRequest, message: Message | None = None) -> bool:
        """Show ``message`` (the request rendered now, by default) on the request's
        Slack message; False when Slack refuses it for good."""
        if message is None:
            message = await self.render(request)
        try:
            with priority(Priority.PERSON):  # somebody is looking at this message
                await self.client.chat_update(
                    channel=request.posted_channel, ts=request.ts, text=message.text, blocks=message.blocks
                )
        except SlackApiError as exc:
            if is_transient(exc):
                raise
            log.error(
                "request %s: message could not be updated: %s",
                request.id,
                described(exc),
                extra=logged(exc, **about(request)),
            )
            return False
        return True
