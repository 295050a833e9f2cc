"""A stand-in for the Slack Web API that answers at once and notes when each call arrived.

It answers the methods a worker calls on the approve path (``auth.test``,
``chat.postMessage``, ``chat.update``, ``conversations.replies``,
``chat.postEphemeral``, ``users.info``) with the smallest reply slack_sdk
accepts, and ``{"ok": true}`` to anything else. It does not validate Block
Kit: the tests' fake does that; here the stand-in's own cost must stay small
next to the worker's. Arrival times are ``time.monotonic()``, the clock the
agent process stamps its calls with (CLOCK_MONOTONIC on Linux is shared by all
processes), so latencies can be taken across processes.

Given ``SlackLimits`` it also enforces Slack's rate limits: a call past its
bucket gets HTTP 429 ``{"ok": false, "error": "ratelimited"}`` with a
``Retry-After`` in whole seconds, as Slack answers it. It counts every call it
answered and every 429, by method.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from typing import Any

from aiohttp import web

from ..slack.ids import ACTIONS_BLOCK_PREFIX, Action
from .slack_limits import SlackLimits

BOT_USER_ID = "U0BENCHBOT"
TEAM_ID = "T0BENCH"
DECIDING_ACTIONS = frozenset({Action.APPROVE.value, Action.DENY.value})
"""Buttons that show a request as still open to a decision."""


class SlackStub:
    """Records ``chat.postMessage`` (by request id) and ``chat.update`` (by message ts).

    ``limits``: enforce these rate limits (None: answer every call at once)."""

    def __init__(self, limits: SlackLimits | None = None) -> None:
        self.limits = limits
        self.posted: dict[str, float] = {}
        """Request id → when its request message arrived."""
        self.channel_of: dict[str, str] = {}
        """Request id → the channel its request message was posted to."""
        self.updated: dict[str, float] = {}
        """Request id → when the first update of its message arrived."""
        self.live: set[str] = set()
        """With ``limits``: requests whose message, as last posted or updated, still offers Approve or Deny."""
        self.answered: Counter[str] = Counter()
        """Method → calls answered ``ok`` (or as Slack would answer them)."""
        self.limited: Counter[str] = Counter()
        """Method → calls refused with HTTP 429."""
        self.last_call = 0.0
        """When the latest call arrived."""
        self._post_queues: list[asyncio.Queue[str]] = []
        self._request_of_ts: dict[str, str] = {}
        self._ts = itertools.count(1)
        self._watches: list[tuple[dict[str, float], set[str], asyncio.Future[None]]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        """Serve on a free loopback port; returns the base URL (``…/api/``)."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/api/"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def reset_counts(self) -> None:
        """Forget the calls counted so far, and fill every rate-limit bucket again."""
        self.answered.clear()
        self.limited.clear()
        if self.limits is not None:
            self.limits.reset()

    def watch_posts(self) -> asyncio.Queue[str]:
        """A queue that receives the id of each request posted from now on (``unwatch_posts`` ends it)."""
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._post_queues.append(queue)
        return queue

    def unwatch_posts(self, queue: asyncio.Queue[str]) -> None:
        self._post_queues.remove(queue)

    async def wait_posted(self, request_ids: list[str], timeout: float) -> None:
        """Until every one of ``request_ids`` has been posted (TimeoutError after ``timeout``)."""
        await self._wait_all(self.posted, request_ids, timeout)

    async def wait_updated(self, request_ids: list[str], timeout: float) -> None:
        """Until the message of every one of ``request_ids`` has been updated."""
        await self._wait_all(self.updated, request_ids, timeout)

    async def _wait_all(self, seen: dict[str, float], request_ids: list[str], timeout: float) -> None:
        missing = set(request_ids) - seen.keys()
        if not missing:
            return
        watch = (seen, missing, asyncio.get_running_loop().create_future())
        self._watches.append(watch)
        try:
            async with asyncio.timeout(timeout):
                await watch[2]
        except TimeoutError:
            what = "posted" if seen is self.posted else "updated"
            raise TimeoutError(
                f"{len(missing)} of {len(request_ids)} requests not {what} within {timeout:.0f}s, "
                f"e.g. {min(missing)}"
            ) from None
        finally:
            self._watches.remove(watch)

    def _note(self, seen: dict[str, float], request_id: str, arrived: float) -> None:
        """Record the first arrival for ``request_id``; wake a wait it completes (O(1) per call)."""
        if request_id in seen:
            return
        seen[request_id] = arrived
        for watched, missing, done in self._watches:
            if watched is seen and request_id in missing:
                missing.discard(request_id)
                if not missing and not done.done():
                    done.set_result(None)

    async def _handle(self, request: web.Request) -> web.Response:
        arrived = self.last_call = time.monotonic()
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                args.update(await request.json())
            else:
                args.update(await request.post())
        if self.limits is not None:
            retry_after = self.limits.take(method, str(args.get("channel", "")), arrived)
            if retry_after:
                self.limited[method] += 1
                return web.json_response(
                    {"ok": False, "error": "ratelimited"},
                    status=429,
                    headers={"Retry-After": str(retry_after)},
                )
        self.answered[method] += 1
        return web.json_response(self._answer(method, args, arrived))

    def _answer(self, method: str, args: dict[str, Any], arrived: float) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if method == "chat.postMessage":
            ts = f"1700000000.{next(self._ts):06d}"
            if not args.get("thread_ts"):
                request_id = _request_id(args.get("blocks"))
                if request_id:
                    if request_id not in self.posted:
                        self.channel_of[request_id] = channel
                        for queue in self._post_queues:
                            queue.put_nowait(request_id)
                    self._note(self.posted, request_id, arrived)
                    self._request_of_ts[ts] = request_id
                    if self.limits is not None:
                        self._show(request_id, args.get("blocks"))
            return {
                "ok": True,
                "channel": channel,
                "ts": ts,
                "message": {"ts": ts, "text": args.get("text", "")},
            }
        if method == "chat.update":
            ts = str(args.get("ts", ""))
            request_id = self._request_of_ts.get(ts)
            if request_id:
                self._note(self.updated, request_id, arrived)
                if self.limits is not None:
                    self._show(request_id, args.get("blocks"))
            return {"ok": True, "channel": channel, "ts": ts}
        if method == "conversations.replies":
            root = {"type": "message", "ts": args.get("ts", ""), "user": BOT_USER_ID, "text": ""}
            return {
                "ok": True,
                "messages": [root],
                "has_more": False,
                "response_metadata": {"next_cursor": ""},
            }
        if method == "auth.test":
            return {
                "ok": True,
                "user_id": BOT_USER_ID,
                "user": "approvals",
                "team_id": TEAM_ID,
                "team": "bench",
                "bot_id": "B0BENCH",
                "url": "https://bench.slack.com/",
            }
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"1700000000.{next(self._ts):06d}"}
        if method == "users.info":
            user = str(args.get("user", ""))
            return {
                "ok": True,
                "user": {"id": user, "name": user.lower(), "profile": {"display_name": user.lower()}},
            }
        return {"ok": True}

    def _show(self, request_id: str, blocks: Any) -> None:
        """Note whether the message now offers a decision (read only under limits: it costs a parse)."""
        if _offers_decision(blocks):
            self.live.add(request_id)
        else:
            self.live.discard(request_id)


def _offers_decision(blocks: Any) -> bool:
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return any(
        isinstance(block, dict)
        and block.get("type") == "actions"
        and any(
            isinstance(e, dict) and e.get("action_id") in DECIDING_ACTIONS for e in block.get("elements", [])
        )
        for block in blocks or []
    )


def _request_id(blocks: Any) -> str | None:
    """The request a message shows, from its buttons' block id."""
    if isinstance(blocks, str):  # form-encoded calls carry blocks as JSON text
        blocks = json.loads(blocks)
    for block in blocks or []:
        block_id = block.get("block_id", "") if isinstance(block, dict) else ""
        if block_id.startswith(ACTIONS_BLOCK_PREFIX):
            return block_id[len(ACTIONS_BLOCK_PREFIX) :].split(".", 1)[0]
    return None
