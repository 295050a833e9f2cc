"""``python -m bot mcp``: the Slack approval as an MCP tool, for ``--permission-prompt-tool``.

Claude Code run headless with ``--permission-prompt-tool mcp__approvals__approve``
calls this server's one tool whenever it would show a permission prompt, with
the arguments ``{"tool_name", "input", "tool_use_id"}`` (CLI 2.1.337), and
reads the answer from the text of the result: JSON
``{"behavior": "allow", "updatedInput": {...}}`` (``updatedPermissions`` too)
or ``{"behavior": "deny", "message": "...", "interrupt"?: true}``.

Each call goes through ``SlackApprover.can_use_tool``: the same request, rules,
Slack message and audit as an SDK agent. It fails closed: any error, a
missing ``REDIS_URL`` included, is a deny that says what failed. The server
still starts then, so the host's model reads why instead of the MCP
connection failing. stdout is the protocol: logs go to stderr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import mcp_types as types
from claude_agent_sdk import PermissionResult, PermissionResultAllow, ToolPermissionContext
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from pydantic import ValidationError

from .. import text
from ..settings import MissingSetting

log = logging.getLogger(__name__)

SERVER_NAME = "approvals"
TOOL_NAME = "approve"
PERMISSION_PROMPT_TOOL = f"mcp__{SERVER_NAME}__{TOOL_NAME}"
"""What to pass to Claude Code's ``--permission-prompt-tool``."""

INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tool_name": {"type": "string", "description": "the tool Claude wants to run"},
        "input": {"type": "object", "description": "its input"},
        "tool_use_id": {"type": "string", "description": "the call's id; one Slack request per id"},
    },
    "required": ["tool_name", "input"],
}

HEARTBEAT_SECONDS = 20.0
"""How often a waiting call reports progress. Claude Code aborts an MCP call
that sends "no response or progress" for CLAUDE_CODE_MCP_TOOL_IDLE_TIMEOUT
(30 minutes on stdio by default, checked every 30 s): a decision may take
longer, and progress notifications reset that clock (seen on CLI 2.1.337)."""

EXIT_SIGNALLED = 128 + signal.SIGTERM

CANCEL_WAIT_SECONDS = 10.0
"""How long a cancelled call waits for its request to be marked cancelled
(``SlackApprover`` gives that 5 seconds)."""


class Approver(Protocol):
    """What the tool needs of ``SlackApprover``."""

    async def can_use_tool(
        self, tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext
    ) -> PermissionResult: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class McpConfig:
    """``python -m bot mcp``'s options."""

    agent_name: str = ""
    requested_by: str = ""
    channel: str = ""
    timeout: float | None = None
    """Seconds until an undecided request expires (``APPROVAL_TIMEOUT`` if None)."""


class BadCall(ValueError):
    """The tool's arguments cannot be used."""


def decision_json(result: PermissionResult, tool_input: dict[str, Any]) -> dict[str, Any]:
    """``can_use_tool``'s result as the JSON Claude Code reads from a permission prompt tool."""
    if isinstance(result, PermissionResultAllow):
        answer: dict[str, Any] = {
            "behavior": "allow",
            # The whole input the tool runs with: the edited one after a Modify.
            "updatedInput": result.updated_input if result.updated_input is not None else tool_input,
        }
        if result.updated_permissions:
            answer["updatedPermissions"] = [update.to_dict() for update in result.updated_permissions]
        return answer
    answer = {"behavior": "deny", "message": result.message}
    if result.interrupt:
        answer["interrupt"] = True  # "Deny and stop": the CLI ends the run (terminal_reason aborted_tools)
    return answer


def deny_json(message: str) -> dict[str, Any]:
    return {"behavior": "deny", "message": message}


class ApprovalTool:
    """The ``approve`` tool: one ``Approver`` for the server's life, or the reason there is none."""

    def __init__(self, approver: Approver | None, problem: str = "") -> None:
        if approver is None and not problem:
            raise ValueError("an approval tool needs an approver or the problem that prevented one")
        self.approver = approver
        self.problem = problem

    @classmethod
    def from_env(cls, config: McpConfig) -> ApprovalTool:
        """Build the ``SlackApprover`` from the environment; a setting that cannot be used becomes the problem."""
        from .approver import SlackApprover

        overrides: dict[str, Any] = {} if config.timeout is None else {"approval_timeout": config.timeout}
        try:
            approver = SlackApprover.from_env(
                agent_name=config.agent_name,
                requested_by=config.requested_by,
                channel=config.channel,
                **overrides,
            )
        except MissingSetting as exc:
            return cls(None, str(exc))
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            name = str(first["loc"][0]).upper() if first["loc"] else "settings"
            if name == "APPROVAL_TIMEOUT" and config.timeout is not None:
                name = "--timeout"
            return cls(None, f"{name} is invalid: {first['msg']}")
        except ValueError as exc:  # the approver's own checks, e.g. a timeout out of range
            return cls(None, str(exc))
        return cls(approver)

    async def decide(self, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        """The decision JSON for one call. Never raises, except ``CancelledError``."""
        try:
            if self.approver is None:
                return deny_json(text.agent.deny_not_configured(self.problem))
            tool_name, tool_input, tool_use_id = parse_arguments(arguments)
            context = ToolPermissionContext(signal=None, suggestions=[], tool_use_id=tool_use_id)
            result = await self.approver.can_use_tool(tool_name, tool_input, context)
            return decision_json(result, tool_input)
        except BadCall as exc:
            log.warning("invalid call of %s: %s; denying", TOOL_NAME, exc)
            return deny_json(text.agent.deny_bad_call(str(exc)))
        except Exception as exc:
            # can_use_tool already turns Redis and Slack failures into denies;
            # this is for what is left (a bug, a result that does not map).
            log.exception("approval failed; denying")
            return deny_json(text.agent.deny_internal_error(exc))

    async def aclose(self) -> None:
        """Close the approver: calls still waiting are denied and marked cancelled."""
        if self.approver is not None:
            await self.approver.close()


def parse_arguments(arguments: Mapping[str, Any] | None) -> tuple[str, dict[str, Any], str]:
    """``(tool_name, input, tool_use_id)``; a random id when the host sent none. Raises ``BadCall``."""
    if not isinstance(arguments, Mapping):
        raise BadCall("no arguments")
    tool_name = arguments.get("tool_name")
    if not isinstance(tool_name, str) or not tool_name:
        raise BadCall("tool_name must be a non-empty string")
    tool_input = arguments.get("input")
    if not isinstance(tool_input, dict):
        raise BadCall("input must be an object")
    tool_use_id = arguments.get("tool_use_id")
    if tool_use_id is not None and not isinstance(tool_use_id, str):
        raise BadCall("tool_use_id must be a string")
    # can_use_tool keys its request by tool_use_id; without one, every call is new.
    return tool_name, tool_input, tool_use_id or f"mcp_{secrets.token_hex(12)}"


Progress = Callable[[float], Awaitable[None]]


async def answer_call(tool: ApprovalTool, arguments: Mapping[str, Any] | None, progress: Progress) -> str:
    """The tool's text: the decision as JSON. Reports progress while it waits.

    The decision runs in an asyncio task of its own, outside the MCP
    library's cancel scope: on ``notifications/cancelled`` (Claude Code sends
    it when ``MCP_TOOL_TIMEOUT`` passes) or at shutdown, that anyio scope
    cancels every await inside it again and again, including those of
    ``can_use_tool``'s cancel path, which marks the request cancelled. The
    task gets one cancellation, as from the SDK, and this waits, shielded,
    for it to finish.
    """
    decision = asyncio.ensure_future(tool.decide(arguments))
    try:
        beats = 0
        while True:
            done, _ = await asyncio.wait({decision}, timeout=HEARTBEAT_SECONDS)
            if done:
                return json.dumps(decision.result())
            beats += 1
            try:
                await progress(beats)
            except Exception:
                log.debug("progress notification failed", exc_info=True)
    except BaseException:
        decision.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.wait({decision}, timeout=CANCEL_WAIT_SECONDS)
        raise


def create_server(tool: ApprovalTool) -> Server[Any]:
    """The MCP server ``approvals`` with its one tool, ``approve``."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=TOOL_NAME, description=text.agent.MCP_TOOL_DESCRIPTION, input_schema=INPUT_SCHEMA
                )
            ]
        )

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        if params.name != TOOL_NAME:
            answer = json.dumps(deny_json(text.agent.deny_bad_call(f"there is no tool {params.name!r}")))
        else:

            async def progress(beats: float) -> None:
                await ctx.session.report_progress(
                    beats, None, text.agent.MCP_WAITING
                )  # a no-op without a progressToken

            answer = await answer_call(tool, params.arguments, progress)
        # Never isError: Claude Code denies then too, but the model would read
        # a generic error instead of the reason.
        return types.CallToolResult(content=[types.TextContent(type="text", text=answer)])

    return Server(SERVER_NAME, on_list_tools=list_tools, on_call_tool=call_tool)


async def serve(tool: ApprovalTool) -> None:
    """Serve MCP on stdin/stdout until the host closes stdin (its way to stop a stdio server), or SIGTERM/SIGINT."""
    server = create_server(tool)
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    with anyio.CancelScope() as scope:
        for signum in signals:
            loop.add_signal_handler(signum, scope.cancel)
        async with stdio_server() as (read_stream, write_stream):
            try:
                await server.run(read_stream, write_stream, server.create_initialization_options())
            finally:
                # Calls still waiting were cancelled with the server: each marked its request cancelled.
                with anyio.CancelScope(shield=True):
                    await tool.aclose()
                for signum in signals:
                    loop.remove_signal_handler(signum)
                if scope.cancel_called:
                    # Stopped by a signal while the host holds stdin open: the
                    # transport's stdin reader is a thread that only a line or
                    # EOF ends, so leaving the transport would hang.
                    logging.shutdown()
                    os._exit(EXIT_SIGNALLED)


def main(config: McpConfig) -> int:
    """Run the server; exit 0 when the host disconnects."""
    # stdout carries the protocol: anything else written there breaks it.
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="bot mcp: %(levelname)s %(name)s: %(message)s"
    )
    tool = ApprovalTool.from_env(config)
    if tool.problem:
        log.error("every call will be denied: %s", tool.problem)
    asyncio.run(serve(tool))
    return 0
