"""The state every part of the fake Slack shares, and the helpers its methods have in common.

:class:`SlackState` holds what Slack shows and what the fake saw; the mixins in
``slack_messages``, ``slack_views``, ``slack_response_urls``, ``slack_socket_mode`` and
``slack_faults`` add the Web API methods and test controls, and
:class:`tests.fakes.slack_api.FakeSlack` joins them behind one HTTP server.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from aiohttp import web

from bot.bench.slack_limits import SlackLimits
from bot.slack.block_kit_check import message_refusal
from tests.fakes.slack_records import EphemeralMessage, Fault, Invalid, PostedMessage, SlackCall
from tests.fakes.slack_requests import Reject
from tests.fakes.slack_rules import DEFAULT_RATE_SCALE, TRIGGER_TTL
from tests.fakes.slack_workspace import APP_TOKEN, BOT_USER_ID, DEFAULT_TOKEN, USER_ID, FakeChannel, FakeUser

Handler = Callable[[dict[str, Any]], dict[str, Any]]
"""One Web API method: its arguments in, the fields of its ``{"ok": true}`` answer out."""


class SlackState:
    """State of the fake Web API and the helpers its methods share."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        channels: Mapping[str, str] | None = None,
        users: Iterable[FakeUser] = (),
        rate_scale: float | None = DEFAULT_RATE_SCALE,
    ) -> None:
        self.token = token
        """The bearer token every request must carry."""
        self.rate_scale = rate_scale
        """Slack's rate limits are enforced this many times faster; None: not at all."""
        self._rates = SlackLimits(rate_scale, grace=0.0) if rate_scale is not None else None
        self.calls: list[SlackCall] = []
        """Every request in the order the fake handled it, retries and failures included."""
        self.messages: dict[tuple[str, str], PostedMessage] = {}
        """What Slack shows now, keyed by ``(channel_id, ts)``; deleted messages are removed."""
        self.ephemerals: list[EphemeralMessage] = []
        self.views: dict[str, dict[str, Any]] = {}
        """Current view objects keyed by view id, as ``views.*`` returned them."""
        self.usergroups: dict[str, list[str]] = {}
        """User group id (``S…``) → member ids, for ``usergroups.users.list``."""
        self.home_views: dict[str, dict[str, Any]] = {}
        """User id → the App Home view last published for them."""
        self.invalid: list[Invalid] = []
        """Payloads rejected as invalid; tests usually assert this stays empty."""
        self.channels: dict[str, FakeChannel] = {}
        self.users: dict[str, FakeUser] = {BOT_USER_ID: FakeUser(BOT_USER_ID, "approvalbot", is_bot=True)}
        for channel_id, name in (channels if channels is not None else {"C0APPROVALS": "approvals"}).items():
            self.add_channel(channel_id, name)
        for user in users:
            self.users[user.id] = user

        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._hang: dict[str, int] = defaultdict(int)
        self._released = asyncio.Event()
        self.hung: list[str] = []
        """Methods of the calls that hung (see ``hang``), in order."""
        self._changed = asyncio.Condition()
        self._last_micros = 0
        self._view_counter = 0
        self._used_triggers: set[str] = set()
        self.clock: Callable[[], float] = time.time
        """The fake's now, for trigger and ``response_url`` expiry (tests may move it on)."""
        self.trigger_ttl = TRIGGER_TTL
        self._response_urls: dict[str, tuple[str, str]] = {}
        self._response_url_uses: dict[str, list[float]] = {}
        """Key → [minted at, uses so far]."""
        self._url: str | None = None
        self._handlers: dict[str, Handler] = self._methods()
        self._before_answer: defaultdict[str, list[Callable[[SlackCall], Awaitable[None]]]] = defaultdict(
            list
        )
        self.app_token = APP_TOKEN
        """The app-level token ``apps.connections.open`` requires (Socket Mode)."""
        self.socket_acks: list[dict[str, Any]] = []
        """Every acknowledgement the app sent back over Socket Mode."""
        self._socket: web.WebSocketResponse | None = None
        self.socket_refused = False
        """Socket Mode connections are turned away (see ``drop_socket``)."""

    def _methods(self) -> dict[str, Handler]:
        """The Web API methods the fake answers, by name (``FakeSlack`` lists them)."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running fake."""
        if self._url is None:
            raise RuntimeError("FakeSlack is not running; use FakeSlack.start()")
        return self._url

    # -- configuration -------------------------------------------------------- #

    def add_channel(
        self,
        channel_id: str,
        name: str | None = None,
        *,
        is_private: bool = False,
        is_member: bool = True,
        is_archived: bool = False,
        members: Iterable[str] | None = None,
    ) -> FakeChannel:
        """Make a conversation known (``is_member=False``: the bot is not in it → ``not_in_channel``
        on post and thread reads; ``members``: the only people in it, default everyone)."""
        channel = FakeChannel(
            channel_id,
            name or channel_id.lower(),
            is_private,
            is_member,
            is_archived,
            frozenset(members) if members is not None else None,
        )
        self.channels[channel_id] = channel
        return channel

    def add_user(self, user_id: str, name: str, *, real_name: str = "", is_bot: bool = False) -> FakeUser:
        """Make a user known to ``users.info`` with this name."""
        user = FakeUser(user_id, name, real_name, is_bot)
        self.users[user_id] = user
        return user

    # -- inspection ----------------------------------------------------------- #

    def rate_limited(self) -> list[SlackCall]:
        """The calls answered 429 (the fake's own rate limits and injected ones)."""
        return [call for call in self.calls if call.status == 429]

    def calls_to(self, method: str) -> list[SlackCall]:
        """Calls of one method, in order (failed attempts included)."""
        return [call for call in self.calls if call.method == method]

    def message(self, channel: str, ts: str) -> PostedMessage:
        """The message shown at ``(channel, ts)``; KeyError names what exists."""
        try:
            return self.messages[(channel, ts)]
        except KeyError:
            raise KeyError(f"no message {(channel, ts)}; have {sorted(self.messages)}") from None

    def roots(self) -> list[PostedMessage]:
        """Messages that are not thread replies, oldest first."""
        return sorted((m for m in self.messages.values() if m.thread_ts is None), key=lambda m: float(m.ts))

    def thread(self, channel: str, thread_ts: str) -> list[PostedMessage]:
        """The replies under a message, oldest first."""
        return sorted(
            (m for m in self.messages.values() if m.channel == channel and m.thread_ts == thread_ts),
            key=lambda m: float(m.ts),
        )

    async def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0) -> None:
        """Return once ``predicate()`` is true, re-checking after every handled request."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
            except TimeoutError:
                seen = [call.method for call in self.calls]
                raise TimeoutError(f"condition still false after {timeout}s; calls so far: {seen}") from None

    async def wait_for_call(self, method: str, *, count: int = 1, timeout: float = 5.0) -> SlackCall:
        """Wait until ``method`` was called ``count`` times and return that call."""
        await self.wait_for(lambda: len(self.calls_to(method)) >= count, timeout)
        return self.calls_to(method)[count - 1]

    async def _record(self, call: SlackCall) -> None:
        self.calls.append(call)
        async with self._changed:
            self._changed.notify_all()

    # -- shared helpers ------------------------------------------------------- #

    def _next_ts(self) -> str:
        # Slack's ts is the post's epoch time, unique within the channel.
        micros = max(time.time_ns() // 1000, self._last_micros + 100)
        self._last_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _reject_invalid(self, method: str, error: str, reasons: list[str]) -> Reject:
        self.invalid.append(Invalid(method, error, tuple(reasons)))
        extra: dict[str, Any] = {"response_metadata": {"messages": [f"[ERROR] {r}" for r in reasons]}}
        if error == "invalid_blocks":
            extra["errors"] = reasons
        return Reject(error, **extra)

    def _check_text_and_blocks(self, method: str, args: dict[str, Any], *, required: bool) -> None:
        text, blocks = args.get("text"), args.get("blocks")
        if required and not text and not blocks and not args.get("attachments"):
            raise self._reject_invalid(method, "no_text", ["no text, blocks or attachments"])
        if refusal := message_refusal(text, blocks):
            raise self._reject_invalid(method, *refusal)

    def _channel(self, channel: Any, *, posting: bool = False) -> FakeChannel:
        """Resolve an id, ``#name`` or user id (→ DM) like Slack; raise its errors."""
        if not isinstance(channel, str) or not channel:
            raise Reject("channel_not_found")
        if channel in self.channels:
            found = self.channels[channel]
        elif posting and USER_ID.match(channel):
            # Posting to a user id opens (or reuses) the DM with that user.
            found = self.channels.setdefault("D" + channel[1:], FakeChannel("D" + channel[1:], channel))
        else:
            name = channel.removeprefix("#")
            matches = [c for c in self.channels.values() if c.name == name]
            if not matches:
                raise Reject("channel_not_found")
            found = matches[0]
        if found.is_private and not found.is_member:
            raise Reject("channel_not_found")  # private channels are invisible to non-members
        if posting and found.is_archived:
            raise Reject("is_archived")
        if posting and not found.is_member:
            raise Reject("not_in_channel")
        return found

    def _post(
        self, channel: str, text: str, blocks: list[dict[str, Any]], thread_ts: Any, metadata: Any = None
    ) -> PostedMessage:
        thread = thread_ts if isinstance(thread_ts, str) and thread_ts else None
        if isinstance(metadata, str):  # form-encoded requests carry it as JSON text
            try:
                metadata = json.loads(metadata)
            except ValueError:
                raise Reject("invalid_metadata_format") from None
        if metadata is not None and not (
            isinstance(metadata, dict)
            and isinstance(metadata.get("event_type"), str)
            and re.fullmatch(r"[A-Za-z0-9_]+", metadata["event_type"])
            and isinstance(metadata.get("event_payload"), dict)
        ):
            raise Reject("invalid_metadata_format")
        message = PostedMessage(channel, self._next_ts(), text, blocks, thread, metadata=metadata)
        self.messages[(channel, message.ts)] = message
        return message
