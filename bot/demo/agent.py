"""The playground's agent, and the model's side of the story.

:class:`DemoAgent` runs a real ``claude_agent_sdk`` query with the bundled CLI
and :class:`~bot.SlackApprover` as its ``can_use_tool``: against the scripted
model, or against Claude when ``ANTHROPIC_API_KEY`` is set. :class:`AgentConsole`
records each request and what the agent got back (allowed with which input,
denied with which message, the answers), printed to the terminal and shown on
the page.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    PermissionResult,
    PermissionResultAllow,
    ResultError,
    ResultMessage,
    TextBlock,
    ToolPermissionContext,
    query,
)

from .. import text
from ..agent.approver import SlackApprover
from ..approvals import tools
from . import scenario
from .scripted_model import ScriptedModel

log = logging.getLogger(__name__)

CanUseTool = Callable[[str, dict[str, Any], ToolPermissionContext], Any]

_TAGS = {
    "ask": "asked",
    "allow": "allowed",
    "deny": "denied",
    "answers": "answered",
    "info": "agent",
    "error": "error",
}
_DETAIL_LIMIT = 2000


@dataclass(frozen=True)
class Entry:
    """One line of the agent's story."""

    at: float
    kind: str
    """ask, allow, deny, answers, info or error."""
    title: str
    detail: str = ""
    hint: str = ""


class AgentConsole:
    """What the agent asked and received: printed as it happens and kept for the page."""

    def __init__(self, out: TextIO, on_change: Callable[[], None]) -> None:
        self.out = out
        self.entries: list[Entry] = []
        self.on_change = on_change

    def add(self, kind: str, title: str, detail: str = "", hint: str = "") -> None:
        entry = Entry(time.time(), kind, title, detail[:_DETAIL_LIMIT], hint)
        self.entries.append(entry)
        lines = [f"[{_TAGS[kind]}] {title}"]
        lines += [f"    {line}" for line in detail.splitlines()[:40]]
        if hint:
            lines.append(f"    try: {hint}")
        print("\n".join(lines), file=self.out, flush=True)
        self.on_change()

    def watching(self, can_use_tool: CanUseTool, tips: dict[str, str]) -> CanUseTool:
        """``can_use_tool`` that also tells the console what was asked and what came back."""

        async def ask(
            tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext
        ) -> PermissionResult:
            self.add(
                "ask", f"{tool_name}: {_summary(tool_input)}", hint=tips.get(context.tool_use_id or "", "")
            )
            try:
                result = await can_use_tool(tool_name, tool_input, context)
            except asyncio.CancelledError:
                self.add("info", f"{tool_name}: the call was cancelled")
                raise
            self._received(tool_name, tool_input, result)
            return result

        return ask

    def _received(self, tool_name: str, asked: dict[str, Any], result: PermissionResult) -> None:
        if not isinstance(result, PermissionResultAllow):
            self.add("deny", f"{tool_name} denied; the model reads:", result.message)
            return
        given = result.updated_input if result.updated_input is not None else asked
        answers = given.get("answers") if tool_name == tools.ASK_USER_QUESTION else None
        if isinstance(answers, dict):
            self.add(
                "answers", "AskUserQuestion answered:", "\n".join(f"{q} → {a}" for q, a in answers.items())
            )
            return
        changed = " (changed in Slack)" if given != asked else ""
        self.add(
            "allow",
            f"{tool_name} allowed{changed}, with input:",
            json.dumps(given, indent=2, ensure_ascii=False),
        )


def _summary(tool_input: dict[str, Any]) -> str:
    shown = tools.summary(tool_input)
    if shown is not None:
        return shown[:200]
    asked = tool_input.get("questions")
    if isinstance(asked, list) and asked:
        # The questions themselves say more than their number.
        texts = [str(q.get("question", "")) if isinstance(q, dict) else str(q) for q in asked]
        count = "1 question" if len(asked) == 1 else f"{len(asked)} questions"
        return f"{count}: {' · '.join(texts)}"[:200]
    return json.dumps(tool_input, ensure_ascii=False)[:200]


class DemoAgent:
    """Runs the agent task in the background; ``start()`` again once it has finished."""

    def __init__(
        self, approver: SlackApprover, console: AgentConsole, workdir: Path, api_key: str | None
    ) -> None:
        self.approver = approver
        self.console = console
        self.workdir = workdir
        self.api_key = api_key
        self._task: asyncio.Task[None] | None = None
        # The CLI's own settings and sessions, kept apart from the person's ~/.claude.
        self._config = tempfile.mkdtemp(prefix="approvals-demo-claude-")

    @property
    def mode(self) -> str:
        return "claude" if self.api_key else "scripted"

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def status(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "running": self.running,
            "workdir": str(self.workdir),
            "log": [asdict(e) for e in self.console.entries],
        }

    def start(self) -> bool:
        """Start a run; False if one is still going."""
        if self.running:
            return False
        self._task = asyncio.create_task(self._run(), name="demo-agent")
        self._task.add_done_callback(lambda _: self.console.on_change())
        return True

    async def close(self) -> None:
        """Cancel a run (its pending requests end as cancelled) and remove the CLI's settings folder."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        shutil.rmtree(self._config, ignore_errors=True)

    async def _run(self) -> None:
        scenario.prepare(self.workdir)
        try:
            if self.api_key:
                env = {"ANTHROPIC_API_KEY": self.api_key, "CLAUDE_CONFIG_DIR": self._config}
                said = await self._query(scenario.PROMPT, env, tips={})
            else:
                script = scenario.scripted(self.workdir)
                async with ScriptedModel.start(script.steps) as model:
                    said = await self._query(
                        scenario.SCRIPTED_PROMPT, model.cli_env(self._config), script.tips
                    )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # shown to the person trying it, not swallowed
            log.exception("the demo agent failed")
            self.console.add("error", "The agent stopped with an error", f"{type(exc).__name__}: {exc}")
            return
        self.console.add("info", "The agent finished. It says:", said or "(nothing)")

    async def _query(self, prompt: str, env: dict[str, str], tips: dict[str, str]) -> str:
        options = ClaudeAgentOptions(
            cwd=self.workdir,
            setting_sources=[],
            tools=scenario.TOOLS,
            env=env,
            can_use_tool=self.console.watching(self.approver.can_use_tool, tips),
            permission_mode="default",
            max_turns=30,
        )
        said: list[str] = []
        stopped = False
        try:
            async for message in query(prompt=prompt, options=options):
                if isinstance(message, AssistantMessage):
                    said += [block.text for block in message.content if isinstance(block, TextBlock)]
                stopped |= isinstance(message, ResultMessage) and message.terminal_reason == "aborted_tools"
        except ResultError:
            # Deny and stop: Claude Code ends the run with an error result, which the SDK raises.
            if not stopped:
                raise
            said.append(text.demo.DEMO_RUN_STOPPED)
        return "\n".join(said)
