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
for Slack shares (tests call its ``message_blocks_errors`` and ``view_errors``
directly on a builder's output). The fake is put together from one mixin per
surface: :mod:`tests.fakes.slack_messages`, :mod:`tests.fakes.slack_views`,
:mod:`tests.fakes.slack_response_urls`, :mod:`tests.fakes.slack_socket_mode` and
:mod:`tests.fakes.slack_faults`, over the shared :mod:`tests.fakes.slack_state`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_faults import FaultInjection
from tests.fakes.slack_messages import MessagesApi
from tests.fakes.slack_records import SlackCall
from tests.fakes.slack_requests import Reject, bearer, read_args
from tests.fakes.slack_response_urls import ResponseUrls
from tests.fakes.slack_rules import DEFAULT_RATE_SCALE
from tests.fakes.slack_socket_mode import SocketMode
from tests.fakes.slack_state import Handler
from tests.fakes.slack_views import ViewsApi
from tests.fakes.slack_workspace import DEFAULT_TOKEN, FakeUser


class FakeSlack(MessagesApi, ViewsApi, ResponseUrls, SocketMode, FaultInjection):
    """The fake Web API on a local HTTP server; create it with :meth:`start`."""

    def _methods(self) -> dict[str, Handler]:
        return {
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
        body: dict[str, Any] | str
        headers: dict[str, str]
        try:
            args = await read_args(request)
        except ValueError:
            args, status, body, headers = {}, 200, {"ok": False, "error": "invalid_json"}, {}
        else:
            # Slack also accepts the token as a form field; keep it out of the record.
            token = bearer(request) or args.pop("token", None)
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
        except Reject as reject:
            return 200, reject.body, {}
