"""The fake's Socket Mode: the WebSocket a bot opens instead of serving HTTP."""

from __future__ import annotations

import json
import secrets
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.slack_state import SlackState


class SocketMode(SlackState):
    """``apps.connections.open`` and the connection it hands out: envelopes out, acks in."""

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
