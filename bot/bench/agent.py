"""The benchmark's agent process: ``SlackApprover.can_use_tool`` calls on command.

Run by the benchmark as ``python -m bot.bench.agent`` with ``REDIS_URL`` set.
It reads one JSON command per line on stdin and answers on stdout:

- ``{"op": "ask", "batch": B, "count": N, "rate": R}``: call ``can_use_tool``
  N times (``tool_use_id(B, i)``), R calls a second, or all at once if R is 0.
  With ``"agent": A, "channel": C`` the calls come from a ``SlackApprover``
  of their own, named A and posting to C (one per pair, kept for later
  batches): several agents in one process.
- ``{"op": "collect", "batch": B, "timeout": T}``: once every call of B has
  returned, ``{"calls": {tool_use_id: [called, returned, allowed]}}``, the
  times from ``time.monotonic()``.
- ``{"op": "memory"}``: ``{"rss": bytes, "waiting": calls in progress}``.
- ``{"op": "quit"}``: close the approver and exit.

Nothing else in the process competes with the approver for its event loop,
as in an agent host whose model is waiting for tool results.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from claude_agent_sdk import PermissionResultAllow, ToolPermissionContext

from ..agent.approver import SlackApprover

REQUEST_TIMEOUT = 3600.0
"""Longer than any phase: a request that expires mid-run would be a bench failure, not a figure."""


def tool_use_id(batch: str, index: int) -> str:
    """The ``tool_use_id`` of call ``index`` of ``batch`` (the driver derives request ids from it)."""
    return f"toolu_bench_{batch}_{index:06d}"


def resident_bytes() -> int:
    """This process's resident memory (Linux: /proc/self/statm)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class _Batch:
    count: int
    calls: dict[str, list[Any]] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class BenchAgent:
    def __init__(self, approver: SlackApprover) -> None:
        self.approver = approver
        self.others: dict[tuple[str, str], SlackApprover] = {}
        """(agent name, channel) → the approver of that agent."""
        self.batches: dict[str, _Batch] = {}
        self.waiting = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def start_asking(self, batch: str, count: int, rate: float, agent: str = "", channel: str = "") -> None:
        record = self.batches[batch] = _Batch(count)  # now: a "collect" may follow at once
        if count == 0:
            record.done.set()
        approver = self.approver
        if agent or channel:
            approver = self.others.get((agent, channel)) or self.others.setdefault(
                (agent, channel),
                SlackApprover(
                    self.approver.redis_url or "", timeout=REQUEST_TIMEOUT, agent_name=agent, channel=channel
                ),
            )
        self._spawn(self._ask(approver, batch, record, rate))

    async def close(self) -> None:
        for approver in self.others.values():
            await approver.close()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)  # a task nobody holds may be garbage-collected mid-call
        task.add_done_callback(self._tasks.discard)

    async def _ask(self, approver: SlackApprover, batch: str, record: _Batch, rate: float) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for index in range(record.count):
            if rate > 0:
                await asyncio.sleep(max(0.0, start + index / rate - loop.time()))
            self._spawn(self._call(approver, record, tool_use_id(batch, index)))

    async def _call(self, approver: SlackApprover, batch: _Batch, call_id: str) -> None:
        self.waiting += 1
        called = time.monotonic()
        try:
            result = await approver.can_use_tool(
                "Bash", {"command": f"echo {call_id}"}, ToolPermissionContext(tool_use_id=call_id)
            )
        finally:
            self.waiting -= 1
        batch.calls[call_id] = [called, time.monotonic(), isinstance(result, PermissionResultAllow)]
        if len(batch.calls) == batch.count:
            batch.done.set()

    async def collect(self, batch: str, timeout: float) -> dict[str, Any]:
        record = self.batches[batch]
        try:
            async with asyncio.timeout(timeout):
                await record.done.wait()
        except TimeoutError:
            return {"error": f"{record.count - len(record.calls)} of {record.count} calls still waiting"}
        return {"calls": record.calls}


async def serve(agent: BenchAgent) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = json.loads(line)
        match command["op"]:
            case "ask":
                agent.start_asking(
                    command["batch"],
                    command["count"],
                    command["rate"],
                    command.get("agent", ""),
                    command.get("channel", ""),
                )
                continue  # no answer: the calls' outcomes are collected later
            case "collect":
                answer = await agent.collect(command["batch"], command["timeout"])
            case "memory":
                answer = {"rss": resident_bytes(), "waiting": agent.waiting}
            case "quit":
                return
            case other:
                answer = {"error": f"unknown op {other!r}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


async def main() -> None:
    async with SlackApprover(
        os.environ["REDIS_URL"], timeout=REQUEST_TIMEOUT, agent_name="bench"
    ) as approver:
        agent = BenchAgent(approver)
        try:
            await serve(agent)
        finally:
            await agent.close()


if __name__ == "__main__":
    asyncio.run(main())
