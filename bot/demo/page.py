"""The playground page: the channel as each person sees it, live, and their clicks.

``GET /`` serves the page; ``/demo/stream`` pushes the current user's view of
the workspace (server-sent events) whenever it changes; the POST routes take
what the person did and hand it to :class:`Interactions`, which sends it to
the bot as Slack would.
"""

from __future__ import annotations

import asyncio
import json
import re
from importlib import resources
from typing import Any

from aiohttp import web

from . import people
from .agent import DemoAgent
from .interactions import RESPONSE_PATH, Interactions, Refused
from .workspace import Ephemeral, Message, SlackError, Workspace

STATIC = resources.files(__package__) / "static"
PAGE_PATH = "/"
STATIC_PATH = "/demo/static/{name}"
TOKEN_HEADER = "X-Playground-Token"
"""The header the page's script sends the per-start secret in (see ``guard``)."""
TOKEN_PARAM = "token"
"""The query parameter that carries it where a header cannot: the page's address, its EventSource stream."""
TOKEN_MARK = '<meta name="playground-token" content="">'
"""Where ``index.html`` gets the secret, for ``app.js`` to read."""
CLIENT = "client"
"""The query parameter and body field naming the page (one load, one person): where a modal shows."""
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{0,64}")
KEEPALIVE_SECONDS = 15
"""A comment line this often keeps proxies and the browser from closing an idle stream."""


def add_routes(
    app: web.Application, workspace: Workspace, interactions: Interactions, agent: DemoAgent, token: str
) -> None:
    """The page (carrying ``token``, the per-start secret), its live stream, and the actions people take on it."""
    template = (STATIC / "index.html").read_text(encoding="utf-8")
    if TOKEN_MARK not in template:
        raise RuntimeError(f"index.html has no {TOKEN_MARK}: the page could not use its own API")
    # token_urlsafe's alphabet needs no escaping in an attribute.
    html = template.replace(TOKEN_MARK, f'<meta name="playground-token" content="{token}">')
    routes = PageRoutes(workspace, interactions, agent, html)
    app.router.add_get(PAGE_PATH, routes.index)
    app.router.add_get(STATIC_PATH, routes.static)
    app.router.add_get("/demo/state", routes.state)
    app.router.add_get("/demo/stream", routes.stream)
    app.router.add_post("/demo/click", routes.click)
    app.router.add_post("/demo/submit", routes.submit)
    app.router.add_post("/demo/close", routes.close)
    app.router.add_post("/demo/leave", routes.leave)
    app.router.add_post("/demo/post", routes.post)
    app.router.add_post(RESPONSE_PATH, routes.respond)
    app.router.add_post("/demo/agent/run", routes.run_agent)
    app.middlewares.append(_refusals)
    app.on_shutdown.append(routes.end_streams)


class PageRoutes:
    """The page's handlers: what each person sees, and what they do on it."""

    def __init__(self, workspace: Workspace, interactions: Interactions, agent: DemoAgent, html: str) -> None:
        self.workspace = workspace
        self.interactions = interactions
        self.agent = agent
        self.html = html

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(text=self.html, content_type="text/html", charset="utf-8")

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        types = {"app.js": "text/javascript", "style.css": "text/css"}
        if name not in types:
            raise web.HTTPNotFound()
        return _static(name, types[name])

    async def state(self, request: web.Request) -> web.Response:
        return web.json_response(
            snapshot(self.workspace, self.agent, _viewer(request), _client(request.query.get(CLIENT)))
        )

    async def stream(self, request: web.Request) -> web.StreamResponse:
        user, client = _viewer(request), _client(request.query.get(CLIENT))
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        version = -1
        self.workspace.watch(user, client)
        try:
            while not self.workspace.closed:
                if version != self.workspace.version:
                    version = self.workspace.version
                    data = json.dumps(
                        snapshot(self.workspace, self.agent, user, client), separators=(",", ":")
                    )
                    await response.write(f"data: {data}\n\n".encode())
                try:
                    await asyncio.wait_for(self.workspace.changed(version), KEEPALIVE_SECONDS)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
        except ConnectionResetError:
            pass  # the tab was closed, reloaded or switched person
        finally:
            # Its last stream gone, the page is gone: its modals close (the page also says so itself).
            for closed in self.workspace.unwatch(user, client):
                await self.interactions.closed(closed)
        return response

    async def click(self, request: web.Request) -> web.Response:
        body = await _body(request)
        await self.interactions.click(
            _text(body, "user"),
            _text(body, "ts"),
            _text(body, "block_id"),
            _text(body, "action_id"),
            _selected(body.get("selected")),
            ephemeral=bool(body.get("ephemeral")),
            client=_client(body.get(CLIENT)),
        )
        return web.json_response({"ok": True})

    async def submit(self, request: web.Request) -> web.Response:
        body = await _body(request)
        values = body.get("values")
        if not isinstance(values, dict) or not all(isinstance(v, dict) for v in values.values()):
            raise Refused("values must be {block_id: {action_id: value}}")
        picked = {str(b): {str(a): _selected(v) for a, v in inputs.items()} for b, inputs in values.items()}
        errors = await self.interactions.submit(_text(body, "user"), _text(body, "view_id"), picked)
        return web.json_response({"ok": not errors, "errors": errors} if errors else {"ok": True})

    async def close(self, request: web.Request) -> web.Response:
        body = await _body(request)
        await self.interactions.close_view(_text(body, "user"), _text(body, "view_id"))
        return web.json_response({"ok": True})

    async def leave(self, request: web.Request) -> web.Response:
        body = await _body(request)
        await self.interactions.leave(_text(body, "user"), _client(body.get(CLIENT)))
        return web.json_response({"ok": True})

    async def post(self, request: web.Request) -> web.Response:
        body = await _body(request)
        thread_ts = body.get("thread_ts")
        await self.interactions.write(
            _text(body, "user"), _text(body, "text"), str(thread_ts) if thread_ts else None
        )
        return web.json_response({"ok": True})

    async def respond(self, request: web.Request) -> web.Response:
        self.interactions.respond(request.match_info["key"], await _body(request))
        return web.json_response({"ok": True})

    async def run_agent(self, request: web.Request) -> web.Response:
        if not self.agent.start():
            return web.json_response({"ok": False, "error": "the agent is still running"}, status=409)
        return web.json_response({"ok": True})

    async def end_streams(self, _app: web.Application) -> None:
        self.workspace.close()


def snapshot(workspace: Workspace, agent: DemoAgent, user: str, client: str = "") -> dict[str, Any]:
    """Everything ``user`` sees on the page ``client``: the channel with their ephemeral messages,
    threads, the modal open on that page, the agent."""
    threads = {root.ts: workspace.replies(root.ts) for root in workspace.roots()}
    shown = [_message(workspace.messages[ts], len(replies)) for ts, replies in threads.items()]
    shown += [_message(e, 0) for e in workspace.ephemerals if e.shown_to == user]
    shown.sort(key=lambda m: m["ts"])
    view = workspace.view_of(user, client)
    return {
        "version": workspace.version,
        "me": user,
        "people": [{"id": p.id, "name": p.name, "title": p.title} for p in people.PEOPLE],
        "users": {p.id: p.name for p in people.PEOPLE}
        | {people.BOT_USER_ID: people.BOT_NAME, people.SLACKBOT_ID: people.SLACKBOT_NAME},
        "usergroups": {group: handle for group, (handle, _) in people.USERGROUPS.items()},
        "channels": {workspace.channel: people.CHANNEL_NAME},
        "channel": {"id": workspace.channel, "name": people.CHANNEL_NAME},
        "messages": shown,
        "threads": {ts: [_message(reply, 0) for reply in replies] for ts, replies in threads.items()},
        "view": None
        if view is None
        else {k: view.get(k) for k in ("id", "hash", "type", "title", "submit", "close", "blocks")},
        "agent": agent.status(),
    }


def _message(message: Message | Ephemeral, reply_count: int) -> dict[str, Any]:
    return {
        "ts": message.ts,
        "user": message.user,
        "bot": message.by_bot,
        "text": message.text,
        "blocks": message.blocks,
        "edited": message.edited,
        "reply_count": reply_count,
        "ephemeral": isinstance(message, Ephemeral),
    }


@web.middleware
async def _refusals(request: web.Request, handler: Any) -> web.StreamResponse:
    """Bad requests from the page get a JSON error and change nothing."""
    try:
        return await handler(request)
    except Refused as exc:
        return web.json_response({"ok": False, "error": str(exc)}, status=exc.status)
    except SlackError as exc:
        return web.json_response(
            {"ok": False, "error": exc.error}, status=404 if "not_found" in exc.error else 400
        )


def _static(name: str, content_type: str) -> web.Response:
    return web.Response(body=(STATIC / name).read_bytes(), content_type=content_type, charset="utf-8")


def _viewer(request: web.Request) -> str:
    user = request.query.get("user", people.PEOPLE[0].id)
    if people.person(user) is None:
        raise Refused(f"unknown person {user!r}")
    return user


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise Refused("the body must be JSON") from None
    if not isinstance(body, dict):
        raise Refused("the body must be a JSON object")
    return body


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise Refused(f"{key} is missing")
    return value


def _client(value: Any) -> str:
    """The page's client id (none: ``""``, as the page API's older callers send)."""
    if value is None:
        return ""
    if not isinstance(value, str) or not _CLIENT_ID.fullmatch(value):
        raise Refused("client must be up to 64 letters, digits, '-' or '_'")
    return value


def _selected(value: Any) -> str | list[str] | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise Refused("a selection is a string, a list of strings or null")
