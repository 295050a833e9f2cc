"""``python -m bot.bench.gate_noise``: how many calls the gate asks Slack about that
``can_use_tool`` alone would never see (issue 16, item 6).

One scripted session, typical of a coding agent, is run three times with the
real SDK and bundled CLI against a private ``redis-server``:

- ``can_use_tool`` only: Claude Code asks only what its own rules say to ask;
- ``approver.options()`` with the gate as it was: every matched call is asked;
- ``approver.options()`` as it is: the gate leaves to Claude Code the calls
  the run's allow rules match and simple read-only Bash commands.

The runs are in wait mode, so the session goes to its end; in defer mode the
gate asks about the same calls (defer only changes what it answers). An
in-process stand-in for the team approves each request as soon as it is
queued for Slack; the count of requests queued is the count of Slack posts.
In the gate runs ``can_use_tool`` is asked nothing: the request is approved
before the gate answers, so the gate answers ``allow`` itself.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, cast

from claude_agent_sdk import ClaudeAgentOptions, PermissionResult, ToolPermissionContext, query
from redis.typing import KeyT, StreamIdT

from ..agent.approver import SlackApprover
from ..approvals import keys
from ..approvals.model import Decision, State
from ..approvals.store import RequestStore
from ..approvals.tools import FILE_PATH, shell_command
from ..demo.scripted_model import ScriptedModel, Step, text, tool_use
from ..redis_client import connect
from .processes import start_redis

ALLOWED_TOOLS = ["Bash(npm test:*)"]
"""The run's ``allowed_tools``."""
SETTINGS = {"permissions": {"allow": ["Bash(make test)"]}}
"""The run's own settings."""
TOOLS = ["Bash", "Read", "Write", "Edit"]


def prepare(workdir: Path) -> None:
    """A small project: a README, a module, a package.json and a Makefile with tests, in git."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "README.md").write_text("# demo\n\nfoo is the answer.\n")
    (workdir / "app.py").write_text("x = 1\n")
    (workdir / "package.json").write_text(
        json.dumps({"name": "demo", "private": True, "scripts": {"test": "echo npm tests passed"}})
    )
    (workdir / "Makefile").write_text("test:\n\t@echo make tests passed\n")
    subprocess.run(["git", "init", "-q"], cwd=workdir, check=True)


def session(workdir: Path) -> list[tuple[str, dict[str, Any]]]:
    """The calls the model makes, one per turn, in order."""
    bash = [
        ("Bash", {"command": c})
        for c in (
            "ls",
            "cat README.md",
            "git status",
            "pwd",
            "grep -r foo .",
            "echo x > out.txt",
            "rm out.txt",
        )
    ]
    return [
        *bash,
        ("Write", {"file_path": str(workdir / "notes.md"), "content": "notes\n"}),
        ("Read", {"file_path": str(workdir / "app.py")}),  # the CLI edits only a file it has read
        ("Edit", {"file_path": str(workdir / "app.py"), "old_string": "x = 1", "new_string": "x = 2"}),
        ("Bash", {"command": "npm test"}),  # allowed_tools: Bash(npm test:*)
        ("Bash", {"command": "make test"}),  # settings: Bash(make test)
    ]


def script(workdir: Path) -> list[Step]:
    return [*(tool_use(name, tool_input) for name, tool_input in session(workdir)), text("done")]


def label(tool_name: str, tool_input: dict[str, Any]) -> str:
    """``Bash: ls``, ``Write: notes.md``: one call, for people."""
    command = shell_command(tool_name, tool_input)
    if command is not None:
        return f"{tool_name}: {command}"
    return f"{tool_name}: {Path(str(tool_input.get(FILE_PATH, ''))).name}"


def without_passthrough(options: ClaudeAgentOptions) -> ClaudeAgentOptions:
    """The options with the gate as it was before it left anything to Claude Code."""
    settings = json.loads(str(options.settings))
    for entry in settings["hooks"]["PreToolUse"]:
        for hook in entry["hooks"]:
            argv = shlex.split(hook["command"])
            kept = [word for word in argv if word != "--allow-read-only" and not word.startswith("--allow=")]
            hook["command"] = shlex.join(kept)
    return dataclasses.replace(options, settings=json.dumps(settings))


@dataclass
class Run:
    """What one run of the session asked."""

    asked: list[str]
    """Calls queued for Slack (one post each), in order."""
    can_use_tool: list[str]
    """Calls ``can_use_tool`` was asked about, in order."""
    results: list[str]
    """What the model was told, per call (the first line)."""


class Team:
    """Approves every request queued for Slack, at once, and notes what it was."""

    def __init__(self, redis_url: str) -> None:
        self.redis = connect(redis_url, name="gate-noise-team")
        self.store = RequestStore(self.redis)
        self.asked: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        # redis-py types stream replies loosely: entries are (id, fields) pairs of bytes.
        last: dict[KeyT, StreamIdT] = {}
        for shard in keys.ALL_SHARDS:
            newest = cast(list[tuple[bytes, Any]], await self.redis.xrevrange(keys.jobs(shard), count=1))
            last[keys.jobs(shard)] = newest[0][0] if newest else "0-0"
        self._task = asyncio.create_task(self._approve(last))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task
        await self.store.aclose()
        await self.redis.aclose()

    async def _approve(self, last: dict[KeyT, StreamIdT]) -> None:
        """From the jobs after ``last`` (per stream): earlier runs' jobs stay in the streams (no worker
        takes them). One read of all the shards' streams: the bench runs on one Redis."""
        while True:
            reply = cast(
                list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None,
                await self.redis.xread(last, block=1000),
            )
            for stream, entries in reply or []:
                for entry_id, fields in entries:
                    last[stream.decode()] = entry_id
                    if fields.get(b"kind") != b"post":
                        continue
                    request_id = fields[b"id"].decode()
                    request = await self.store.get(request_id)
                    assert request is not None
                    self.asked.append(label(request.tool_name, request.tool_input))
                    await self.store.decide(request_id, Decision(State.APPROVED, reason="gate_noise bench"))


async def run_session(
    redis_url: str,
    root: Path,
    name: str,
    build: Callable[[SlackApprover, dict[str, Any]], ClaudeAgentOptions],
) -> Run:
    """One run of the session; ``build(approver, kwargs)`` makes its options."""
    workdir = root / name
    prepare(workdir)
    seen: list[str] = []
    async with SlackApprover(redis_url, agent_name=f"gate-noise {name}") as approver, Team(redis_url) as team:

        async def can_use_tool(
            tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext
        ) -> PermissionResult:
            seen.append(label(tool_name, tool_input))
            return await approver.can_use_tool(tool_name, tool_input, context)

        async with ScriptedModel.start(script(workdir)) as model:
            kwargs = {
                "cwd": workdir,
                "setting_sources": [],
                "tools": TOOLS,
                "allowed_tools": ALLOWED_TOOLS,
                "settings": json.dumps(SETTINGS),
                "env": model.cli_env(config_dir=root / f"{name}-cfg"),
                "permission_mode": "default",
            }
            options = dataclasses.replace(build(approver, kwargs), can_use_tool=can_use_tool)
            async with asyncio.timeout(300):
                async for _message in query(prompt="tidy up and run the tests", options=options):
                    pass
            results = [r.content.splitlines()[0] if r.content else "" for r in model.tool_results()]
        return Run(asked=list(team.asked), can_use_tool=seen, results=results)


def _alone(approver: SlackApprover, kwargs: dict[str, Any]) -> ClaudeAgentOptions:
    return ClaudeAgentOptions(**kwargs, can_use_tool=approver.can_use_tool)


def _gate_before(approver: SlackApprover, kwargs: dict[str, Any]) -> ClaudeAgentOptions:
    return without_passthrough(approver.options(**kwargs))


def _gate_after(approver: SlackApprover, kwargs: dict[str, Any]) -> ClaudeAgentOptions:
    return approver.options(**kwargs)


RUNS = {"can_use_tool only": _alone, "gate, before": _gate_before, "gate, after": _gate_after}


async def measure(root: Path) -> dict[str, Run]:
    child, redis_url = await start_redis(root)
    try:
        runs = {}
        for name, build in RUNS.items():
            runs[name] = await run_session(redis_url, root, name.replace(" ", "-").replace(",", ""), build)
        return runs
    finally:
        await child.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.bench.gate_noise", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--json", default="", metavar="PATH", help="also write the counts and calls here")
    args = parser.parse_args(argv)
    for name in list(os.environ):  # the CLI must talk to the scripted model only
        if name.startswith(("ANTHROPIC_", "CLAUDE_")) or name == "CLAUDECODE":
            del os.environ[name]
    with tempfile.TemporaryDirectory(prefix="gate-noise-") as tmp:
        runs = asyncio.run(measure(Path(tmp)))
    calls = [label(name, tool_input) for name, tool_input in session(Path("/work"))]
    print(f"session ({len(calls)} calls): " + "; ".join(calls))
    for name, run in runs.items():
        print(
            f"{name:18} Slack posts {len(run.asked):2}  can_use_tool {len(run.can_use_tool):2}  asked: {'; '.join(run.asked)}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({n: dataclasses.asdict(r) for n, r in runs.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
