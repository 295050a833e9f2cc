"""``claude -p`` as a user runs it: the real bundled CLI, its settings on the command line,
the scripted model standing in for the API."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import claude_agent_sdk

from bot.demo.scripted_model import ScriptedModel, Step

CLI = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
RUN_BOUND = 90
"""Seconds a run may take before the test counts it as hanging (a bound, not a speed target)."""


def gate_hook(event: str, args: str = "", *, matcher: str = "*", timeout: float = 600) -> dict[str, Any]:
    """Settings installing ``python -m bot gate`` for ``event``, telling it its own timeout."""
    command = f"{sys.executable} -m bot gate --hook-timeout {timeout:g} {args}".strip()
    hook = {"type": "command", "command": command, "timeout": timeout}
    return {"hooks": {event: [{"matcher": matcher, "hooks": [hook]}]}}


@dataclass
class Run:
    code: int
    events: list[dict[str, Any]]
    """``--output-format stream-json`` lines."""
    stderr: str

    @property
    def result(self) -> dict[str, Any]:
        return next(e for e in self.events if e.get("type") == "result")

    def of(self, kind: str, subtype: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e.get("type") == kind and (subtype is None or e.get("subtype") == subtype)
        ]


async def claude(
    model: ScriptedModel,
    workdir: Path,
    config_dir: Path,
    settings: dict[str, Any],
    *args: str,
    redis_url: str,
    env: dict[str, str] | None = None,
    tools: str = "Bash",
    prompt: str = "do the task",
) -> Run:
    """One ``claude -p`` run in ``workdir`` (stream-json, so every event can be read)."""
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_", "REDIS_URL"))
    }
    environ.update(model.cli_env(config_dir=config_dir), REDIS_URL=redis_url, **(env or {}))
    process = await asyncio.create_subprocess_exec(
        str(CLI),
        "-p",
        prompt,
        "--settings",
        json.dumps(settings),
        "--tools",
        tools,
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-mode",
        "default",
        *args,
        cwd=workdir,
        env=environ,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), RUN_BOUND)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
        raise AssertionError(
            f"claude -p still running after {RUN_BOUND}s:\n{out.decode()[-3000:]}\n{err.decode()[-2000:]}"
        ) from None
    events = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    assert process.returncode is not None
    return Run(process.returncode, events, err.decode())


async def scripted_run(
    tmp_path: Path,
    script: Sequence[Step],
    settings: dict[str, Any],
    *args: str,
    redis_url: str,
    **kwargs: Any,
) -> tuple[Run, ScriptedModel, Path]:
    """``claude`` against a scripted model in ``tmp_path/work``; returns the run, the model and the folder."""
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    async with ScriptedModel.start(script) as model:
        run = await claude(model, workdir, tmp_path / "cfg", settings, *args, redis_url=redis_url, **kwargs)
    return run, model, workdir
