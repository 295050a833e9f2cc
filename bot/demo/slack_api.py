"""The Slack Web API, as far as the bot uses it, answered from the playground's workspace.

The bot's clients point at ``http://<demo>/api/`` (``SLACK_API_URL``) and make
the same calls they make to Slack; block payloads are checked as the tests'
fake Slack checks them (``bot.slack.block_kit_check``), so a message Slack
would refuse is refused here too.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..slack.block_kit_check import message_refusal, view_errors
from . import people
from .workspace import SlackError, Workspace

log = logging.getLogger(__name__)

API_PATH = "/api/{method}"
_JSON_ARGS = ("blocks", "view", "attachments")
"""Form-encoded calls carry these as JSON strings."""

Method = Callable[[Workspace, dict[str, Any]], dict[str, Any]]


def add_routes(app: web.Application, workspace: Workspace, bot_token: str) -> None:
    """Serve the Web API for the bot's clients under ``/api/``, to those who send ``bot_token``.

    The token is made at each start: a fixed one, written in this source,
    would let anyone who can reach the playground post and edit the bot's
    messages (a request card that shows another command than it runs).
    """
    # slack_sdk sends a few methods (usergroups.users.list, users.info) as GET.
    app.router.add_route("*", API_PATH, _WebApi(workspace, bot_token).handle)


class _WebApi:
    """Answers the bot's Web API calls from ``workspace``, to those who send the bot token."""

    def __init__(self, workspace: Workspace, bot_token: str) -> None:
        self.workspace = workspace
        self.expected = f"Bearer {bot_token}".encode()

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            given = request.headers.get("Authorization", "").encode("utf-8", "replace")
            if not hmac.compare_digest(given, self.expected):
                raise SlackError("invalid_auth")
            handler = METHODS.get(method)
            if handler is None:
                raise SlackError("unknown_method")
            body = {"ok": True, **handler(self.workspace, await _args(request))}
        except SlackError as exc:
            if exc.details:
                log.warning("demo Slack refused %s: %s", method, "; ".join(exc.details))
            body = {"ok": False, "error": exc.error}
            if exc.details:
                body["response_metadata"] = {"messages": [f"[ERROR] {d}" for d in exc.details]}
        return web.json_response(body)


async def _args(request: web.Request) -> dict[str, Any]:
    args: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        if not isinstance(body, dict):
            raise SlackError("invalid_json")
        args |= body
    elif request.can_read_body:
        args |= {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    for key in _JSON_ARGS:
        if isinstance(args.get(key), str):
            try:
                args[key] = json.loads(args[key])
            except ValueError:
                raise SlackError("invalid_arguments", f"{key} is not JSON") from None
    return args


def _channel(workspace: Workspace, args: dict[str, Any]) -> str:
    if args.get("channel") != workspace.channel:
        raise SlackError("channel_not_found")
    return workspace.channel


def _content(args: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    text, blocks = str(args.get("text") or ""), args.get("blocks") or []
    if not text and not blocks:
        raise SlackError("no_text")
    if refusal := message_refusal(text, args.get("blocks")):
        error, reasons = refusal
        raise SlackError(error, *reasons)
    return text, blocks


def auth_test(workspace: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_id": people.BOT_USER_ID,
        "bot_id": people.BOT_ID,
        "user": people.BOT_NAME,
        "team_id": people.TEAM_ID,
        "team": "Approvals playground",
        "url": "http://127.0.0.1/",
    }


def chat_post_message(workspace: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = _channel(workspace, args)
    text, blocks = _content(args)
    thread_ts = args.get("thread_ts") or None
    message = workspace.post(people.BOT_USER_ID, text, blocks, thread_ts)
    return {"channel": channel, "ts": message.ts, "message": message.as_slack()}


def chat_update(workspace: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = _channel(workspace, args)
    message = workspace.message(str(args.get("ts")))
    text, blocks = _content(args)
    workspace.edit(message, text, blocks)
    return {"channel": channel, "ts": message.ts, "text": text, "message": message.as_slack()}


def chat_delete(workspace: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = _channel(workspace, args)
    message = workspace.message(str(args.get("ts")))
    workspace.delete(message)
    return {"channel": channel, "ts": message.ts}


def chat_post_ephemeral(workspace: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    _channel(workspace, args)
    if people.person(str(args.get("user"))) is None:
        raise SlackError("user_not_in_channel")
    text, blocks = _content(args)
    return {"message_ts": workspace.post_ephemeral(str(args["user"]), text, blocks).ts}


def conversations_info(workspace: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = _channel(workspace, args)
    return {"channel": {"id": channel, "name": people.CHANNEL_NAME, "is_channel": True, "is_member": True}}


def conversations_replies(workspace: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    _channel(workspace, args)
    root = workspace.message(str(args.get("ts")))
    thread = [root, *workspace.replies(root.ts)]
    return {
        "messages": [m.as_slack() | {"thread_ts": root.ts} for m in thread],
        "has_more": False,
        "response_metadata": {"next_cursor": ""},
    }


def users_info(workspace: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    user = people.person(str(args.get("user")))
    if user is None:
        raise SlackError("user_not_found")
    return {
        "user": {
            "id": user.id,
            "name": user.name,
            "real_name": user.name,
            "is_bot": False,
            "deleted": False,
            "profile": {"display_name": user.name, "real_name": user.name},
        }
    }


def usergroups_users_list(workspace: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    group = people.USERGROUPS.get(str(args.get("usergroup")))
    if group is None:
        raise SlackError("no_such_subteam")
    return {"users": list(group[1])}


def views_open(workspace: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    return {"view": workspace.open_view(str(args.get("trigger_id")), _view(args))}


def views_update(workspace: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    return {"view": workspace.update_view(str(args.get("view_id")), _view(args), args.get("hash"))}


def views_publish(workspace: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    # The page has no App Home tab: accept a valid view so the bot's listener succeeds.
    view = _view(args)
    problems = view_errors(view)
    if view.get("type") != "home":
        problems.append("view type must be home")
    if problems:
        raise SlackError("invalid_arguments", *problems)
    return {"view": {**view, "id": "V0DEMOHOME"}}


def _view(args: dict[str, Any]) -> dict[str, Any]:
    view = args.get("view")
    if not isinstance(view, dict):
        raise SlackError("invalid_arguments", "view is missing")
    return view


METHODS: dict[str, Method] = {
    "auth.test": auth_test,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "chat.delete": chat_delete,
    "chat.postEphemeral": chat_post_ephemeral,
    "conversations.info": conversations_info,
    "conversations.replies": conversations_replies,
    "users.info": users_info,
    "usergroups.users.list": usergroups_users_list,
    "views.open": views_open,
    "views.update": views_update,
    "views.publish": views_publish,
}
