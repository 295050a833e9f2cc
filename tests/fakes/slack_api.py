"""An offline Slack Web API that answers like Slack and remembers what it shows.

:class:`FakeSlack` serves ``/api/<method>`` on 127.0.0.1 for a real
``slack_sdk.web.async_client.AsyncWebClient(base_url=slack.base_url, ...)``.
It validates Block Kit payloads the way Slack rejects them, keeps the current
state of every posted message and opened view, and can inject errors, rate
limits and 5xx answers.

Example::

    async with FakeSlack.start() as slack:
        client = slack.client()
        await client.chat_postMessage(channel="C0APPROVALS", text="hi")
        slack.rate_limit("chat.update", retry_after=0)
        ...
        await slack.wait_for(lambda: slack.calls_to("chat.update"))
        assert slack.invalid == []

Validation is :mod:`bot.slack.block_kit_check`'s, which the playground's stand-in
for Slack shares; :func:`message_blocks_errors` and :func:`view_errors` are
exported here too, for tests to call directly on a builder's output.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import secrets
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from bot.bench.slack_limits import SlackLimits
from bot.slack.block_kit_check import (
    blocks_text_length,
    message_blocks_errors,
    message_refusal,
    view_errors,
)

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "DEFAULT_RATE_SCALE",
    "DEFAULT_TOKEN",
    "TEAM_DOMAIN",
    "TEAM_ID",
    "EphemeralMessage",
    "FakeChannel",
    "FakeSlack",
    "FakeUser",
    "Invalid",
    "PostedMessage",
    "SlackCall",
    "blocks_text_length",
    "message_blocks_errors",
    "view_errors",
]

# The fake workspace and the bot installed in it; slack_payloads uses the same ids.
TEAM_ID = "T0TEAM"
TEAM_DOMAIN = "fake-team"
APP_ID = "A0APP"
BOT_ID = "B0BOT"
BOT_USER_ID = "U0BOT"
DEFAULT_TOKEN = "xoxb-test"
APP_TOKEN = "xapp-test"

TRIGGER_TTL = 3.0
"""Seconds a ``trigger_id`` opens a view after the click that minted it (docs.slack.dev)."""
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60
"""A ``response_url`` answers at most 5 times, within 30 minutes of the click (docs.slack.dev)."""
_TRIGGER = re.compile(r"^([0-9]+)\.([0-9]+)\.([0-9a-f]+)$")
DEFAULT_RATE_SCALE = 20.0
"""How much faster than Slack's documented limits the fake enforces them unless told
otherwise: realistic shape (bursts, per-channel posts, tiers), a fast suite."""

FIRST_TS = "1700000000.000100"
"""A message ts from the past, for payloads about a message the fake never posted.
Messages the fake posts carry the time they were posted, as Slack's do."""

_JSON_FIELDS = ("blocks", "attachments", "view", "metadata")
"""Form-encoded requests carry these as JSON strings; decoded before recording."""

_USER_ID = re.compile(r"^[UW][A-Z0-9_]+$")  # "_" is not Slack's, but test ids like U_ALICE use it


# --------------------------------------------------------------------------- #
# Records
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class SlackCall:
    """One request as the fake received and answered it (the token is not in ``args``)."""

    method: str
    args: dict[str, Any]
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether Slack would have reported success."""
        return self.status == 200 and bool(self.response.get("ok"))


@dataclass(frozen=True)
class Invalid:
    """A payload the fake rejected as Slack would (bad blocks, view or text)."""

    method: str
    error: str
    reasons: tuple[str, ...]


@dataclass
class PostedMessage:
    """What Slack currently shows for one message."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    edits: int = 0
    user: str = BOT_USER_ID
    """Who wrote it: the bot, or a person (``FakeSlack.reply``)."""
    metadata: dict[str, Any] | None = None
    """The message metadata it was posted with (``chat.postMessage`` ``metadata``)."""
    team: str = TEAM_ID
    """The author's workspace: another organisation's in a Slack Connect channel."""

    @property
    def by_bot(self) -> bool:
        return self.user == BOT_USER_ID

    def as_dict(self) -> dict[str, Any]:
        """The message object as Slack returns it (and embeds in interaction payloads)."""
        message: dict[str, Any] = {"type": "message", "user": self.user}
        if self.by_bot:
            message |= {"bot_id": BOT_ID, "app_id": APP_ID}
        message |= {"team": self.team, "text": self.text, "blocks": self.blocks, "ts": self.ts}
        if self.team != TEAM_ID:
            message["user_team"] = self.team
        if self.thread_ts is not None:
            message["thread_ts"] = self.thread_ts
        if self.edits:
            message["edited"] = {"user": BOT_USER_ID, "ts": self.ts}
        return message


@dataclass(frozen=True)
class EphemeralMessage:
    """A ``chat.postEphemeral`` message (only ``user`` sees it; it cannot be updated)."""

    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]]
    message_ts: str


@dataclass
class FakeChannel:
    """A conversation the fake workspace knows."""

    id: str
    name: str
    is_private: bool = False
    is_member: bool = True
    """Whether the bot is in it (else ``not_in_channel`` on posts and thread reads)."""
    is_archived: bool = False
    members: frozenset[str] | None = None
    """The people in it; None: everyone (``chat.postEphemeral`` to anyone else → ``user_not_in_channel``)."""

    def has_member(self, user: str) -> bool:
        return self.members is None or user in self.members

    def as_dict(self) -> dict[str, Any]:
        """The channel object of ``conversations.info``."""
        is_im = self.id.startswith("D")
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not (self.is_private or is_im),
            "is_group": self.is_private,
            "is_im": is_im,
            "is_mpim": False,
            "is_private": self.is_private or is_im,
            "created": 1_690_000_000,
            "is_archived": self.is_archived,
            "is_general": False,
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_ext_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": TEAM_ID,
            "parent_conversation": None,
            "creator": "U0CREATOR",
            "is_member": self.is_member,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
            "previous_names": [],
        }


@dataclass
class FakeUser:
    """A workspace member for ``users.info``."""

    id: str
    name: str
    real_name: str = ""
    is_bot: bool = False
    deleted: bool = False

    def as_dict(self) -> dict[str, Any]:
        """A minimal user object of ``users.info``."""
        real_name = self.real_name or self.name
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": real_name,
            "tz": "Europe/London",
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "is_admin": False,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1_690_000_000,
            "profile": {
                "real_name": real_name,
                "display_name": self.name,
                "real_name_normalized": real_name,
                "display_name_normalized": self.name,
                "team": TEAM_ID,
            },
        }


@dataclass
class _Fault:
    """An injected answer used instead of the real one ``remaining`` more times."""

    status: int
    body: dict[str, Any] | str
    headers: dict[str, str]
    remaining: int


class _Reject(Exception):
    """Ends handling of a request with ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.body = {"ok": False, "error": error, **extra}


# --------------------------------------------------------------------------- #
# The fake
# --------------------------------------------------------------------------- #


class FakeSlack:
    """State and handlers of the fake Web API; create it with :meth:`start`."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        channels: Mapping[str, str] | None = None,
        users: Iterable[FakeUser] = (),
        rate_scale: float | None = DEFAULT_RATE_SCALE,
    ) -> None:
        self.token = token
        self.rate_scale = rate_scale
        """Slack's rate limits are enforced this many times faster; None: not at all."""
        self._rates = SlackLimits(rate_scale, grace=0.0) if rate_scale is not None else None
        """The bearer token every request must carry."""
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

        self._faults: dict[str, deque[_Fault]] = defaultdict(deque)
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
        self._handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "conversations.info": self._conversations_info,
            "users.info": self._users_info,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "usergroups.users.list": self._usergroups_users_list,
            "apps.connections.open": self._apps_connections_open,
        }
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

    # -- lifecycle ------------------------------------------------------------ #

    @classmethod
    @asynccontextmanager
    async def start(
        cls,
        *,
        token: str = DEFAULT_TOKEN,
        channels: Mapping[str, str] | None = None,
        users: Iterable[FakeUser] = (),
        rate_scale: float | None = DEFAULT_RATE_SCALE,
    ) -> AsyncIterator[FakeSlack]:
        """Serve the fake on a free 127.0.0.1 port for the ``with`` body.

        ``channels`` maps ids to names (default ``{"C0APPROVALS": "approvals"}``).
        ``rate_scale``: Slack's rate limits are enforced this many times faster
        (a bot under test sets ``SLACK_RATE_SCALE`` to match); None for a test
        that needs Slack without limits.
        """
        slack = cls(token=token, channels=channels, users=users, rate_scale=rate_scale)
        app = web.Application()
        app.router.add_route("*", "/api/{method}", slack._handle_api)
        app.router.add_post("/response_url/{key}", slack._handle_response_url)
        app.router.add_get("/socket-mode", slack._handle_socket)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            slack._url = f"http://{host}:{port}"
            yield slack
        finally:
            slack._released.set()
            await runner.cleanup()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running fake."""
        if self._url is None:
            raise RuntimeError("FakeSlack is not running; use FakeSlack.start()")
        return self._url

    @property
    def base_url(self) -> str:
        """Value for ``AsyncWebClient(base_url=...)`` (with the trailing slash slack_sdk needs)."""
        return f"{self.url}/api/"

    def client(self, **kwargs: Any) -> AsyncWebClient:
        """An ``AsyncWebClient`` for this fake (extra kwargs such as ``retry_handlers`` pass through)."""
        kwargs.setdefault("token", self.token)
        client = AsyncWebClient(base_url=self.base_url, **kwargs)
        # AsyncWebClient reads HTTP(S)_PROXY from the environment and ignores
        # NO_PROXY, so an ambient proxy would capture our loopback server.
        client.proxy = kwargs.get("proxy")
        return client

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

    def fail(self, method: str, error: str = "internal_error", *, times: int = 1, **extra: Any) -> None:
        """Answer the next ``times`` calls of ``method`` with HTTP 200 ``{"ok": false, "error": error, **extra}``."""
        self._add_fault(method, _Fault(200, {"ok": False, "error": error, **extra}, {}, times))

    def rate_limit(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with HTTP 429 and ``Retry-After``."""
        body = {"ok": False, "error": "ratelimited"}
        self._add_fault(method, _Fault(429, body, {"Retry-After": str(retry_after)}, times))

    def server_error(self, method: str, *, status: int = 503, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with an HTML 5xx page, as Slack's edge does."""
        page = f"<html><body><h1>{status}</h1>Service Unavailable</body></html>"
        self._add_fault(method, _Fault(status, page, {}, times))

    def hang(self, method: str, *, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` never get an answer and change nothing,
        like a request in flight when its sender dies (recorded in ``hung``, not ``calls``)."""
        self._hang[method] += times

    def before_answer(self, method: str, hook: Callable[[SlackCall], Awaitable[None]]) -> None:
        """Run ``hook`` once, on the next ``method`` call, after Slack acted but before the
        caller gets the answer: a fault there strikes between Slack's side and ours."""
        self._before_answer[method].append(hook)

    def clear_faults(self) -> None:
        """Forget every injected failure not yet used."""
        self._faults.clear()

    def _add_fault(self, method: str, fault: _Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("times must be at least 1")
        self._faults[method].append(fault)

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

    def reply(
        self, channel: str, thread_ts: str, user: str, text: str, *, team: str = TEAM_ID
    ) -> PostedMessage:
        """A person replies in a thread (the test then delivers the ``message`` event, or not);
        ``team`` is the author's own workspace (another organisation's, in a shared channel)."""
        message = self._post(channel, text, [], thread_ts)
        message.user = user
        message.team = team
        return message

    def response_url(self, channel: str, message_ts: str) -> str:
        """A ``response_url`` for the message at ``(channel, message_ts)`` served by this fake.

        Posts to it are recorded as calls of method ``"response_url"`` and applied
        like Slack does (``replace_original`` / ``delete_original``).
        """
        key = secrets.token_hex(8)
        self._response_urls[key] = (channel, message_ts)
        self._response_url_uses[key] = [self.clock(), 0]
        return f"{self.url}/response_url/{key}"

    def show_ephemeral(
        self, channel: str, user: str, text: str, blocks: list[dict[str, Any]]
    ) -> EphemeralMessage:
        """Show ``user`` a message only they see, as the answer to a slash command is shown
        (the bot answered it in its HTTP response, which the fake does not see)."""
        ephemeral = EphemeralMessage(channel, user, text, list(blocks), self._next_ts())
        self.ephemerals.append(ephemeral)
        return ephemeral

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

    # -- HTTP ----------------------------------------------------------------- #

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if self._hang[method]:
            self._hang[method] -= 1
            self.hung.append(method)
            async with self._changed:
                self._changed.notify_all()
            await self._released.wait()  # set when the fake shuts down
            raise web.HTTPServiceUnavailable()
        try:
            args = await _read_args(request)
        except ValueError:
            args, status, body, headers = {}, 200, {"ok": False, "error": "invalid_json"}, {}
        else:
            # Slack also accepts the token as a form field; keep it out of the record.
            token = _bearer(request) or args.pop("token", None)
            args.pop("token", None)
            status, body, headers = self._answer(method, args, token)
        call = SlackCall(method, args, status, body if isinstance(body, dict) else {})
        await self._record(call)
        for hook in self._before_answer.pop(method, []):
            await hook(call)  # the caller has not seen the answer yet
        if isinstance(body, str):
            return web.Response(status=status, text=body, content_type="text/html", headers=headers)
        return web.json_response(body, status=status, headers=headers)

    def _answer(
        self, method: str, args: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any] | str, dict[str, str]]:
        """Status, body and extra headers for one API request (no awaits: state stays consistent)."""
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        # apps.connections.open takes the app-level token, every other method the bot token.
        if token != (self.app_token if method == "apps.connections.open" else self.token):
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        faults = self._faults.get(method)
        if faults:
            fault = faults[0]
            fault.remaining -= 1
            if fault.remaining == 0:
                faults.popleft()
            return fault.status, fault.body, fault.headers
        if self._rates is not None and method in self._handlers:
            channel = args.get("channel")
            retry_after = self._rates.take(method, channel if isinstance(channel, str) else "")
            if retry_after:
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}
        handler = self._handlers.get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method", "req_method": method}, {}
        try:
            return 200, {"ok": True, **handler(args)}, {}
        except _Reject as reject:
            return 200, reject.body, {}

    async def _record(self, call: SlackCall) -> None:
        self.calls.append(call)
        async with self._changed:
            self._changed.notify_all()

    # -- Socket Mode ---------------------------------------------------------- #

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.url.replace("http://", "ws://") + "/socket-mode"}

    async def drop_socket(self, *, refuse: bool = True) -> None:
        """Close the Socket Mode connection, as Slack's edge does; ``refuse``: and turn away
        reconnects until ``socket_refused`` is set False again."""
        self.socket_refused = refuse
        if self._socket is not None:
            await self._socket.close()

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        """One Socket Mode connection: say hello, relay envelopes, record acks."""
        if self.socket_refused:
            raise web.HTTPServiceUnavailable()
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._socket = socket
        await socket.send_json({"type": "hello", "num_connections": 1, "debug_info": {"host": "fake"}})
        async with self._changed:
            self._changed.notify_all()
        async for message in socket:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.socket_acks.append(json.loads(message.data))
                async with self._changed:
                    self._changed.notify_all()
        return socket

    async def send_over_socket(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Deliver ``payload`` as Slack's Socket Mode does and return the app's acknowledgement."""
        await self.wait_for(lambda: self._socket is not None and not self._socket.closed)
        envelope_id = secrets.token_hex(8)
        assert self._socket is not None
        await self._socket.send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
            }
        )
        await self.wait_for(lambda: any(a.get("envelope_id") == envelope_id for a in self.socket_acks))
        return next(a for a in self.socket_acks if a.get("envelope_id") == envelope_id)

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        try:
            args = await _read_args(request)
        except ValueError:
            args = {}
        key = request.match_info["key"]
        target = self._response_urls.get(key)
        status, text = 200, "ok"
        if target is None:
            status, text = 404, "no_active_hooks"
        elif self.clock() - self._response_url_uses[key][0] > RESPONSE_URL_TTL:
            status, text = 404, "expired_url"
        elif self._response_url_uses[key][1] >= RESPONSE_URL_USES:
            status, text = 404, "used_url"
        else:
            self._response_url_uses[key][1] += 1
            try:
                self._apply_response(target, args)
            except _Reject as reject:
                status, text = 400, str(reject)
        answer: dict[str, Any] = {"ok": True} if status == 200 else {"ok": False, "error": text}
        await self._record(SlackCall("response_url", args, status, answer))
        return web.Response(status=status, text=text, content_type="text/plain")

    def _apply_response(self, target: tuple[str, str], args: dict[str, Any]) -> None:
        channel, ts = target
        if args.get("delete_original") in (True, "true"):
            self.messages.pop((channel, ts), None)
            return
        self._check_text_and_blocks("response_url", args, required=True)
        shown = next((e for e in self.ephemerals if (e.channel, e.message_ts) == (channel, ts)), None)
        if args.get("replace_original") in (True, "true") and shown is not None:
            # An ephemeral message can be replaced only through its response_url.
            index = self.ephemerals.index(shown)
            self.ephemerals[index] = dataclasses.replace(shown, text=_text_of(args), blocks=_blocks_of(args))
            return
        if args.get("replace_original") in (True, "true"):
            message = self.messages.get((channel, ts))
            if message is None:
                raise _Reject("message_not_found")
            message.text, message.blocks = _text_of(args), _blocks_of(args)
            message.edits += 1
        elif args.get("response_type") == "in_channel":
            self._post(channel, _text_of(args), _blocks_of(args), args.get("thread_ts"))
        else:
            # The user who clicked is not known here; Slack shows it to them only.
            self.ephemerals.append(
                EphemeralMessage(channel, "", _text_of(args), _blocks_of(args), self._next_ts())
            )

    # -- shared helpers ------------------------------------------------------- #

    def _next_ts(self) -> str:
        # Slack's ts is the post's epoch time, unique within the channel.
        micros = max(time.time_ns() // 1000, self._last_micros + 100)
        self._last_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _reject_invalid(self, method: str, error: str, reasons: list[str]) -> _Reject:
        self.invalid.append(Invalid(method, error, tuple(reasons)))
        extra: dict[str, Any] = {"response_metadata": {"messages": [f"[ERROR] {r}" for r in reasons]}}
        if error == "invalid_blocks":
            extra["errors"] = reasons
        return _Reject(error, **extra)

    def _check_text_and_blocks(self, method: str, args: dict[str, Any], *, required: bool) -> None:
        text, blocks = args.get("text"), args.get("blocks")
        if required and not text and not blocks and not args.get("attachments"):
            raise self._reject_invalid(method, "no_text", ["no text, blocks or attachments"])
        if refusal := message_refusal(text, blocks):
            raise self._reject_invalid(method, *refusal)

    def _channel(self, channel: Any, *, posting: bool = False) -> FakeChannel:
        """Resolve an id, ``#name`` or user id (→ DM) like Slack; raise its errors."""
        if not isinstance(channel, str) or not channel:
            raise _Reject("channel_not_found")
        if channel in self.channels:
            found = self.channels[channel]
        elif posting and _USER_ID.match(channel):
            # Posting to a user id opens (or reuses) the DM with that user.
            found = self.channels.setdefault("D" + channel[1:], FakeChannel("D" + channel[1:], channel))
        else:
            name = channel.removeprefix("#")
            matches = [c for c in self.channels.values() if c.name == name]
            if not matches:
                raise _Reject("channel_not_found")
            found = matches[0]
        if found.is_private and not found.is_member:
            raise _Reject("channel_not_found")  # private channels are invisible to non-members
        if posting and found.is_archived:
            raise _Reject("is_archived")
        if posting and not found.is_member:
            raise _Reject("not_in_channel")
        return found

    def _post(
        self, channel: str, text: str, blocks: list[dict[str, Any]], thread_ts: Any, metadata: Any = None
    ) -> PostedMessage:
        thread = thread_ts if isinstance(thread_ts, str) and thread_ts else None
        if isinstance(metadata, str):  # form-encoded requests carry it as JSON text
            try:
                metadata = json.loads(metadata)
            except ValueError:
                raise _Reject("invalid_metadata_format") from None
        if metadata is not None and not (
            isinstance(metadata, dict)
            and isinstance(metadata.get("event_type"), str)
            and re.fullmatch(r"[A-Za-z0-9_]+", metadata["event_type"])
            and isinstance(metadata.get("event_payload"), dict)
        ):
            raise _Reject("invalid_metadata_format")
        message = PostedMessage(channel, self._next_ts(), text, blocks, thread, metadata=metadata)
        self.messages[(channel, message.ts)] = message
        return message

    def _open_with_trigger(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """Check ``trigger_id`` and ``view``, then spend the trigger (each opens one view)."""
        trigger_id = args.get("trigger_id")
        if not trigger_id:
            raise self._reject_invalid(method, "invalid_arguments", ["missing required field: trigger_id"])
        shape = _TRIGGER.match(str(trigger_id))
        if shape is None:
            raise _Reject("invalid_trigger_id")
        if trigger_id in self._used_triggers:
            raise _Reject("exchanged_trigger_id")
        # slack_payloads mints triggers with their time in ms first: 3 s after it
        # the trigger opens nothing (a "1.2.abc" is from 1970: long expired).
        if self.clock() - int(shape.group(1)) / 1000 > self.trigger_ttl:
            raise _Reject("expired_trigger_id")
        view = self._checked_view(method, args)
        self._used_triggers.add(str(trigger_id))
        return self._store_view(view, view_id=None, root=None, previous=None)

    def _checked_view(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        reasons = view_errors(view)
        if reasons:
            raise self._reject_invalid(method, "invalid_arguments", reasons)
        assert isinstance(view, dict)
        return view

    def _store_view(
        self, view: dict[str, Any], *, view_id: str | None, root: str | None, previous: str | None
    ) -> dict[str, Any]:
        self._view_counter += 1
        view_id = view_id or f"V0VIEW{self._view_counter:04d}"
        stored = {
            "id": view_id,
            "team_id": TEAM_ID,
            "type": view["type"],
            "title": view.get("title"),
            "submit": view.get("submit"),
            "close": view.get("close"),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": f"1700000000.{self._view_counter:08x}",
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "root_view_id": root or view_id,
            "previous_view_id": previous,
            "app_id": APP_ID,
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
        }
        self.views[view_id] = stored
        return stored

    # -- methods -------------------------------------------------------------- #

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": "Fake Team",
            "user": self.users[BOT_USER_ID].name,
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"channel": self._channel(args.get("channel")).as_dict()}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = args.get("user")
        if not isinstance(user_id, str) or not user_id:
            raise _Reject("user_not_found")
        user = self.users.get(user_id)
        if user is None:
            # Any well-formed user id exists unless configured; malformed ones do not.
            if not _USER_ID.match(user_id):
                raise _Reject("user_not_found")
            user = FakeUser(user_id, user_id.lower())
        return {"user": user.as_dict()}

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"), posting=True)
        self._check_text_and_blocks("chat.postMessage", args, required=True)
        message = self._post(
            channel.id, _text_of(args), _blocks_of(args), args.get("thread_ts"), args.get("metadata")
        )
        return {"channel": channel.id, "ts": message.ts, "message": message.as_dict()}

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        if not channel.is_member:
            raise _Reject("not_in_channel")
        oldest = float(args.get("oldest") or 0)
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        # Newest first, thread replies left out (they stay in conversations.replies), as Slack does.
        history = sorted(
            (
                m
                for m in self.messages.values()
                if m.channel == channel.id and m.thread_ts in (None, m.ts) and float(m.ts) > oldest
            ),
            key=lambda m: float(m.ts),
            reverse=True,
        )
        start = int(args.get("cursor") or 0)
        page = history[start : start + 2]  # two a page exercises the cursor
        more = start + 2 < len(history)
        messages = []
        for m in page:
            shown = m.as_dict()
            if with_metadata and m.metadata is not None:
                shown["metadata"] = m.metadata
            messages.append(shown)
        return {
            "messages": messages,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + 2) if more else ""},
        }

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        if not channel.is_member:
            raise _Reject("not_in_channel")  # the bot reads only conversations it is in
        root = self.messages.get((channel.id, str(args.get("ts"))))
        if root is None:
            raise _Reject("thread_not_found")
        # Real pages hold up to ``limit`` messages; two per page here exercises the cursor.
        thread = [root, *self.thread(channel.id, root.ts)]
        start = int(args.get("cursor") or 0)
        page = thread[start : start + 2]
        more = start + 2 < len(thread)
        return {
            "messages": [m.as_dict() | {"thread_ts": root.ts} for m in page],
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + 2) if more else ""},
        }

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = args.get("usergroup")
        if group not in self.usergroups:
            raise _Reject("no_such_subteam")
        return {"users": list(self.usergroups[group])}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user = args.get("user_id")
        if not isinstance(user, str) or not _USER_ID.match(user):
            raise _Reject("invalid_user")
        view = self._checked_view("views.publish", args)
        if view.get("type") != "home":
            raise self._reject_invalid("views.publish", "invalid_arguments", ["view type must be home"])
        stored = self._store_view(view, view_id=None, root=None, previous=None)
        self.home_views[user] = stored
        return {"view": stored}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        message = self.messages.get((channel.id, str(args.get("ts"))))
        if message is None and any(
            (e.channel, e.message_ts) == (channel.id, args.get("ts")) for e in self.ephemerals
        ):
            raise _Reject("cant_update_message")  # an ephemeral changes only through its response_url
        if message is None:
            raise _Reject("message_not_found")
        if not message.by_bot:
            raise _Reject("cant_update_message")  # a bot edits only its own messages
        self._check_text_and_blocks("chat.update", args, required=True)
        # Slack keeps fields the update does not mention; an empty list clears blocks.
        if "text" in args:
            message.text = _text_of(args)
        if "blocks" in args:
            message.blocks = _blocks_of(args)
        message.edits += 1
        return {"channel": channel.id, "ts": message.ts, "text": message.text, "message": message.as_dict()}

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        if self.messages.pop((channel.id, str(args.get("ts"))), None) is None:
            raise _Reject("message_not_found")
        return {"channel": channel.id, "ts": args["ts"]}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"), posting=True)
        user = args.get("user")
        if not isinstance(user, str) or not _USER_ID.match(user) or not channel.has_member(user):
            raise _Reject("user_not_in_channel")
        self._check_text_and_blocks("chat.postEphemeral", args, required=True)
        ephemeral = EphemeralMessage(channel.id, user, _text_of(args), _blocks_of(args), self._next_ts())
        self.ephemerals.append(ephemeral)
        return {"message_ts": ephemeral.message_ts}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"view": self._open_with_trigger("views.open", args)}

    def _views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        # The fake keeps no view stack: a pushed view is stored like an opened one.
        return {"view": self._open_with_trigger("views.push", args)}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if view_id:
            current = self.views.get(str(view_id))
        elif external_id:
            current = next((v for v in self.views.values() if v["external_id"] == external_id), None)
        else:
            raise self._reject_invalid(
                "views.update", "invalid_arguments", ["view_id or external_id is required"]
            )
        if current is None:
            raise _Reject("not_found")
        if args.get("hash") and args["hash"] != current["hash"]:
            raise _Reject("hash_conflict")
        view = self._checked_view("views.update", args)
        stored = self._store_view(
            view, view_id=current["id"], root=current["root_view_id"], previous=current["previous_view_id"]
        )
        return {"view": stored}


# --------------------------------------------------------------------------- #
# Request parsing
# --------------------------------------------------------------------------- #


def _text_of(args: Mapping[str, Any]) -> str:
    return str(args.get("text") or "")


def _blocks_of(args: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(args.get("blocks") or [])


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def _read_args(request: web.Request) -> dict[str, Any]:
    """Query, form and JSON arguments merged, JSON-string fields decoded (ValueError on bad JSON)."""
    args: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        raw = await request.read()
        if raw:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("JSON body must be an object")
            args.update(body)
    elif request.can_read_body:
        form = await request.post()
        args.update({key: value for key, value in form.items() if isinstance(value, str)})
    for key in _JSON_FIELDS:
        if isinstance(args.get(key), str):
            try:
                args[key] = json.loads(args[key])
            except ValueError:
                pass  # left as a string: validation then reports it like Slack would
    return args
