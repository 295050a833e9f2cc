"""Reading a Web API request as Slack does, and ending one with Slack's error answer."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

_JSON_FIELDS = ("blocks", "attachments", "view", "metadata")
"""Form-encoded requests carry these as JSON strings; decoded before recording."""


class Reject(Exception):
    """Ends handling of a request with ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.body = {"ok": False, "error": error, **extra}


def text_of(args: Mapping[str, Any]) -> str:
    return str(args.get("text") or "")


def blocks_of(args: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(args.get("blocks") or [])


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def read_args(request: web.Request) -> dict[str, Any]:
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
