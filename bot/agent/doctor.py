"""``python -m bot claude-code doctor``: is our hook installed, and does it block when it cannot ask?

Each hook found is run the way Claude Code runs a command hook — its exact
command through ``/bin/sh -c`` (CLI 2.1.337 runs ``/bin/sh -c <command>``,
whatever ``$SHELL`` is), the hook input JSON on stdin — against a Redis that
refuses connections. A hook that fails any other way than blocking lets the
call through (DESIGN.md §4), which is what this finds before a real call does.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from redis.exceptions import RedisError

from .. import text
from ..approvals.tools import BASH, COMMAND
from ..redis_client import CLI_CLIENT_NAME, connect, redacted
from ..settings import REDIS_TOPOLOGY, Settings
from . import claude_code
from .claude_code import PERMISSION_REQUEST, Found, SettingsError

SHELL = "/bin/sh"
UNREACHABLE = text.agent.deny_unreachable(OSError()).split(" (")[0]
"""The start of the gate's answer when Redis cannot be reached: the reason a block must name."""
PING_TIMEOUT = 5.0


@dataclass
class Report:
    """Prints one line per check and counts the failures."""

    out: TextIO
    failures: int = 0

    def line(self, status: str, what: str, detail: str) -> None:
        self.failures += status == "FAIL"
        print(f"{status:<4} {what}: {detail}", file=self.out, flush=True)

    def check(self, ok: bool, what: str, detail: str) -> None:
        self.line("ok" if ok else "FAIL", what, detail)


@dataclass
class Located:
    path: Path
    found: list[Found] = field(default_factory=list)
    other_approvers: list[Mapping[str, Any]] = field(default_factory=list)


def doctor(paths: Sequence[Path], environ: Mapping[str, str], out: TextIO) -> int:
    """Check every hook of ours in ``paths``; exit 1 if any check failed, else 0."""
    report = Report(out)
    located = []
    for path in paths:
        try:
            settings = claude_code.load(path)
        except SettingsError as exc:
            report.check(False, "settings", str(exc))
            continue
        if settings is not None:
            located.append(
                Located(path, claude_code.find(settings), claude_code.others(settings, PERMISSION_REQUEST))
            )
    ours = [(place.path, found) for place in located for found in place.found]
    if not ours:
        report.check(False, "hook found", text.setup.doctor_none_found(", ".join(map(str, paths))))
    for path, found in ours:
        report.check(True, "hook found", f"{found.event} in {path}: {found.command}")
        _run_checks(report, found, environ)
    if ours:
        approvers = sum(found.event in claude_code.APPROVERS for _, found in ours)
        report.check(approvers == 1, "one hook", text.setup.doctor_count(approvers))
    for place in located:
        for hook in place.other_approvers:
            report.check(
                False,
                "other approver",
                text.setup.doctor_other_approver(str(place.path), str(hook.get("command", hook))),
            )
    url = environ.get("REDIS_URL", "")
    if not url:
        report.check(False, "redis", text.setup.DOCTOR_NO_REDIS_URL)
    else:
        problem = asyncio.run(_ping(url, environ))
        report.check(problem is None, "redis", f"{redacted(url)}: {problem or 'answers PING'}")
    return 1 if report.failures else 0


def _run_checks(report: Report, found: Found, environ: Mapping[str, str]) -> None:
    hook_timeout = found.hook.get("timeout", claude_code.DEFAULT_HOOK_TIMEOUT)
    gate_timeout = gate_hook_timeout(found.command)
    if (
        isinstance(hook_timeout, (int, float))
        and not isinstance(hook_timeout, bool)
        and gate_timeout is not None
    ):
        agree = float(hook_timeout) == gate_timeout
        detail = (
            text.setup.doctor_timeouts(hook_timeout, gate_timeout)
            if agree
            else text.setup.doctor_timeouts_differ(hook_timeout, gate_timeout)
        )
        report.check(agree, "timeouts", detail)
    else:
        report.check(
            False, "timeouts", f'hook "timeout" {hook_timeout!r}, gate --hook-timeout {gate_timeout!r}'
        )
        hook_timeout = claude_code.DEFAULT_HOOK_TIMEOUT
    if "REDIS_URL" in found.command:
        report.check(False, "command starts", text.setup.DOCTOR_SECRET_IN_COMMAND)
        return
    with refusing_port() as port:
        run = run_hook(
            found,
            hook_input(found.event),
            {**environ, "REDIS_URL": f"redis://127.0.0.1:{port}/0"},
            float(hook_timeout),
        )
    if run.code is None:
        report.check(False, "command starts", text.setup.doctor_timed_out(float(hook_timeout)))
        return
    # The gate's only exits are 0 (a decision on stdout) and 2 (blocked).
    if run.code not in (0, 2):
        report.check(False, "command starts", text.setup.doctor_did_not_start(run.code, _tail(run.stderr)))
        return
    report.check(True, "command starts", f"exit {run.code} after {run.seconds:.1f} s")
    if found.event not in claude_code.APPROVERS:
        # The PostToolUse companion: the call already ran, so it must never block (exit 2 would
        # show the model an error); it only ends a request the terminal answered.
        report.check(run.code == 0, "after the call", text.setup.doctor_after_tool(run.code))
        return
    how = blocked_for_unreachable(found.event, run, port)
    report.check(
        how is not None,
        "blocks",
        text.setup.doctor_blocks(how)
        if how
        else text.setup.doctor_wrong_block(
            f"exit {run.code}, stdout {_tail(run.stdout)!r}, stderr {_tail(run.stderr)!r}"
        ),
    )


@dataclass(frozen=True)
class HookRun:
    code: int | None
    """None: still running at the hook's timeout (then killed)."""
    stdout: str
    stderr: str
    seconds: float


def hook_input(event: str, cwd: str | None = None) -> dict[str, Any]:
    """A synthetic input of ``event``, shaped like Claude Code's (DESIGN.md §4)."""
    payload: dict[str, Any] = {
        "session_id": "doctor",
        "transcript_path": "/nonexistent/doctor.jsonl",
        "cwd": cwd or os.getcwd(),
        "prompt_id": "doctor",
        "permission_mode": "default",
        "hook_event_name": event,
        "tool_name": BASH,
        "tool_input": {COMMAND: "true"},
    }
    if event == PERMISSION_REQUEST:
        payload["permission_suggestions"] = []
    else:
        payload["tool_use_id"] = "toolu_doctor"
    return payload


def run_hook(found: Found, payload: Mapping[str, Any], env: Mapping[str, str], timeout: float) -> HookRun:
    """Run the hook's command as Claude Code does, killed (its whole process group) at ``timeout``."""
    started = time.monotonic()
    # An empty folder: `-m bot` must import from wherever claude runs, not only from this checkout.
    with tempfile.TemporaryDirectory(prefix="bot-doctor-") as cwd:
        process = subprocess.Popen(
            [SHELL, "-c", found.command],
            cwd=cwd,
            env={**env, "CLAUDE_PROJECT_DIR": cwd},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = process.communicate(json.dumps(payload), timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            return HookRun(None, out, err, time.monotonic() - started)
    return HookRun(process.returncode, out, err, time.monotonic() - started)


def blocked_for_unreachable(event: str, run: HookRun, port: int) -> str | None:
    """How the hook blocked the call, if it did because Redis (the one on ``port``) could not be reached."""

    def names_it(message: Any) -> bool:
        return isinstance(message, str) and message.startswith(UNREACHABLE) and f":{port}" in message

    if run.code == 2:
        return "exits 2" if names_it(run.stderr.strip()) else None
    try:
        output = json.loads(run.stdout)["hookSpecificOutput"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(output, dict) or output.get("hookEventName") != event:
        return None
    if event == PERMISSION_REQUEST:
        decision = output.get("decision")
        ok = (
            isinstance(decision, dict)
            and decision.get("behavior") == "deny"
            and names_it(decision.get("message"))
        )
    else:
        ok = output.get("permissionDecision") == "deny" and names_it(output.get("permissionDecisionReason"))
    return "answers deny" if ok else None


def gate_hook_timeout(command: str) -> float | None:
    """The gate's ``--hook-timeout`` in ``command`` (600, its default, if absent); None if unreadable."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    for i, word in enumerate(words):
        value = (
            words[i + 1]
            if word == "--hook-timeout" and i + 1 < len(words)
            else (word.removeprefix("--hook-timeout=") if word.startswith("--hook-timeout=") else None)
        )
        if value is not None:
            try:
                return float(value)
            except ValueError:
                return None
    return float(claude_code.DEFAULT_HOOK_TIMEOUT)


@contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nothing else takes it) but not listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


async def _ping(url: str, environ: Mapping[str, str]) -> str | None:
    topology = {name: environ[name.upper()] for name in REDIS_TOPOLOGY if name.upper() in environ}
    try:
        redis = connect(
            url, name=CLI_CLIENT_NAME, topology=Settings.model_validate(topology).redis_topology()
        )
    except ValueError as exc:  # not a redis:// URL, or Sentinel settings that do not fit
        return str(exc)
    try:
        async with asyncio.timeout(PING_TIMEOUT):
            await redis.ping()
        return None
    except (RedisError, OSError, TimeoutError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    finally:
        await redis.aclose()


def _tail(output: str, limit: int = 300) -> str:
    output = output.strip()
    return output if len(output) <= limit else "…" + output[-limit:]
