"""A scripted, offline Anthropic Messages API for driving the real Claude CLI.

The real ``claude_agent_sdk`` spawns the bundled Claude Code CLI, which talks to
``$ANTHROPIC_BASE_URL/v1/messages``. :class:`ScriptedModel` serves that endpoint
on 127.0.0.1 and answers each main-agent turn with the next scripted step, so the
demo (and the tests) decide exactly which tools the "model" calls and can read
what the CLI sent back (tool results, permission denials, ...).

Example::

    async with ScriptedModel.start([
        tool_use("Bash", {"command": "echo hi > marker.txt"}),
        text("done"),
    ]) as model:
        options = ClaudeAgentOptions(
            cwd=tmp_path,
            setting_sources=[],
            tools=["Bash"],
            env=model.cli_env(config_dir=tmp_path / "cfg"),
            can_use_tool=callback,
        )
        async for message in query(prompt="go", options=options):
            ...
        assert not model.tool_results()[0].is_error
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# The script's steps are built with these; they are imported from here with the model.
from .script_steps import Step, text, tool_use, tool_uses
from .sse import sse_events

__all__ = [
    "FINISHED_TEXT",
    "SIDE_CALL_TEXT",
    "ScriptedModel",
    "Step",
    "ToolResult",
    "text",
    "tool_use",
    "tool_uses",
]

log = logging.getLogger(__name__)

FINISHED_TEXT = "(script finished)"
"""What the fake answers once every scripted step has been consumed."""

SIDE_CALL_TEXT = "ok"
"""Answer to requests that are not a main-agent turn (they consume no step)."""


# --------------------------------------------------------------------------- #
# Observed results
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class ToolResult:
    """A ``tool_result`` block the CLI sent back to the model."""

    tool_use_id: str
    content: str
    """The result flattened to text (text parts joined with newlines)."""
    is_error: bool
    raw: dict[str, Any] = field(repr=False, compare=False)


def _flatten_content(content: Any) -> str:
    """Tool result content is a string or a list of blocks; reduce it to text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


# --------------------------------------------------------------------------- #
# The server
# --------------------------------------------------------------------------- #


class ScriptedModel:
    """Fake Messages API answering main-agent turns from a script.

    Use :meth:`start` (an async context manager) to run it. Attributes:

    * ``requests`` -- every ``/v1/messages`` body received, in order.
    * ``turns`` -- the subset that were main-agent turns (each consumed a step,
      or got :data:`FINISHED_TEXT` once the script ran out).
    * ``side_requests`` -- the subset answered with :data:`SIDE_CALL_TEXT`.
    * ``unknown_paths`` -- ``"METHOD /path"`` of requests the fake did not
      recognise (answered 404); assert it is empty to catch CLI surprises.
    """

    def __init__(self, script: Iterable[Step]) -> None:
        """Prepare a server for ``script``; call :meth:`start` to run one."""
        self._pending: list[Step] = list(script)
        self.requests: list[dict[str, Any]] = []
        self.turns: list[dict[str, Any]] = []
        self.side_requests: list[dict[str, Any]] = []
        self.unknown_paths: list[str] = []
        self._url: str | None = None
        self._message_count = 0

    # -- lifecycle ---------------------------------------------------------- #

    @classmethod
    @asynccontextmanager
    async def start(cls, script: Iterable[Step]) -> AsyncIterator[ScriptedModel]:
        """Serve ``script`` on a free 127.0.0.1 port for the ``with`` body."""
        model = cls(script)
        app = web.Application()
        app.router.add_post("/v1/messages", model._handle_messages)
        app.router.add_post("/v1/messages/count_tokens", model._handle_count_tokens)
        app.router.add_route("*", "/{tail:.*}", model._handle_other)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            model._url = f"http://{host}:{port}"
            yield model
        finally:
            await runner.cleanup()

    @property
    def url(self) -> str:
        """Base URL to use as ``ANTHROPIC_BASE_URL``."""
        if self._url is None:
            raise RuntimeError("ScriptedModel is not running; use ScriptedModel.start()")
        return self._url

    def cli_env(self, config_dir: str | os.PathLike[str]) -> dict[str, str]:
        """Environment for ``ClaudeAgentOptions.env`` pointing the CLI at this fake.

        ``config_dir`` isolates the CLI's settings, sessions and credentials
        from the developer's ``~/.claude``.
        """
        return {
            "ANTHROPIC_BASE_URL": self.url,
            "ANTHROPIC_API_KEY": "test",
            "CLAUDE_CONFIG_DIR": str(config_dir),
            # Skips the HEAD /api/hello probe, telemetry and other side traffic.
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            # An ambient HTTP(S)_PROXY must not capture our loopback server.
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    # -- inspection --------------------------------------------------------- #

    @property
    def remaining(self) -> int:
        """Number of script steps not yet consumed."""
        return len(self._pending)

    def tool_results(self) -> list[ToolResult]:
        """Every distinct tool_result the CLI sent back, in first-seen order.

        Each turn re-sends the whole conversation, so results are de-duplicated
        by ``tool_use_id``.
        """
        seen: dict[str, ToolResult] = {}
        for body in self.turns:
            for message in body.get("messages", []):
                content = message.get("content")
                if message.get("role") != "user" or not isinstance(content, list):
                    continue
                for block in content:
                    if not isinstance(block, dict) or block.get("type") != "tool_result":
                        continue
                    tool_use_id = str(block.get("tool_use_id"))
                    if tool_use_id not in seen:
                        seen[tool_use_id] = ToolResult(
                            tool_use_id=tool_use_id,
                            content=_flatten_content(block.get("content")),
                            is_error=bool(block.get("is_error", False)),
                            raw=block,
                        )
        return list(seen.values())

    # -- request handling --------------------------------------------------- #

    @staticmethod
    def is_main_turn(body: Mapping[str, Any]) -> bool:
        """Whether a request is an agent turn (as opposed to a CLI helper call).

        Agent-loop requests offer the agent's tools and ask for (adaptive)
        thinking. The CLI's tool-free helpers, e.g. session-title generation,
        send ``tools: []`` and no ``thinking``. Checking both keeps an agent
        run with ``tools=[]`` counted as a turn.
        """
        return bool(body.get("tools")) or "thinking" in body

    async def _handle_messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if self.is_main_turn(body):
            self.turns.append(body)
            step = self._pending.pop(0) if self._pending else text(FINISHED_TEXT)
        else:
            self.side_requests.append(body)
            step = text(SIDE_CALL_TEXT)
        message = self._message(step, model=str(body.get("model", "claude-test")))
        if body.get("stream"):
            return await self._stream(request, message)
        return web.json_response(message)

    async def _handle_count_tokens(self, request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"input_tokens": 1})

    async def _handle_other(self, request: web.Request) -> web.Response:
        # The connectivity probe is expected when non-essential traffic is on.
        if request.path == "/api/hello":
            return web.Response()
        entry = f"{request.method} {request.path_qs}"
        log.warning("ScriptedModel: unexpected request %s", entry)
        self.unknown_paths.append(entry)
        return web.json_response(
            {"type": "error", "error": {"type": "not_found_error", "message": entry}},
            status=404,
        )

    def _message(self, step: Step, model: str) -> dict[str, Any]:
        """The full (non-streaming) Messages API response for ``step``."""
        self._message_count += 1
        return {
            "id": f"msg_01fake{self._message_count:016d}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [dict(block) for block in step.content],
            "stop_reason": step.stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 1,
                "output_tokens": 1,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }

    async def _stream(self, request: web.Request, message: dict[str, Any]) -> web.StreamResponse:
        """Send ``message`` as the API's server-sent event sequence."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        for event in sse_events(message):
            data = json.dumps(event, separators=(",", ":"))
            await response.write(f"event: {event['type']}\ndata: {data}\n\n".encode())
        await response.write_eof()
        return response
