"""The benchmark's processes: redis-server, ``python -m bot serve`` workers, the agent, the floor server.

Each is a real child process on loopback, started in a work directory and
stopped (SIGTERM, then SIGKILL) when the benchmark ends, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ..settings import Settings

START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Child:
    """One child process, its output in ``<workdir>/<name>.log`` (or piped, for the agent)."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, log: Path | None) -> None:
        self.name = name
        self.process = process
        self.log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 20) -> str:
        """The end of the child's log, to say why it failed."""
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    async def stop(self) -> None:
        if self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(10):
                await self.process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


async def spawn(name: str, argv: list[str], workdir: Path, env: dict[str, str] | None = None) -> Child:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=workdir, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
        )
    return Child(name, process, log)


async def start_redis(workdir: Path) -> tuple[Child, str]:
    """A private redis-server with an append-only file fsynced every second, as production runs it."""
    port = free_port()
    child = await spawn("redis", redis_server_argv(port, workdir), workdir)
    url = f"redis://127.0.0.1:{port}/0"
    await until_pings(child, port)
    return child, url


def redis_server_argv(port: int, home: Path, *extra: str) -> list[str]:
    """``redis-server`` on loopback ``port``, its files in ``home``, append-only fsynced every second."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    return [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(home),
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--daemonize",
        "no",
        *extra,
    ]


async def until_pings(child: Child, port: int) -> None:
    """Until the redis-server ``child`` answers PING on ``port``."""
    client = Redis(host="127.0.0.1", port=port)
    try:
        await until(child, client.ping, (RedisError, OSError))
    finally:
        await client.aclose()


def worker_env(settings: dict[str, str]) -> dict[str, str]:
    """The environment for a worker: ours, with any of the project's settings the caller had removed."""
    ours = {name.upper() for name in Settings.model_fields}
    env = {key: value for key, value in os.environ.items() if key not in ours}
    env.update(settings)
    return env


async def start_worker(name: str, workdir: Path, settings: dict[str, str]) -> tuple[Child, str]:
    """``python -m bot serve``; returns it and its base URL once ``/healthz`` says ok."""
    port = free_port()
    child = await spawn(
        name, [sys.executable, "-m", "bot", "serve"], workdir, worker_env({**settings, "PORT": str(port)})
    )
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:

        async def healthy() -> None:
            async with session.get(f"{url}/healthz") as response:
                response.raise_for_status()

        await until(child, healthy, (aiohttp.ClientError, OSError))
    return child, url


async def start_floor_server(workdir: Path) -> tuple[Child, str]:
    port = free_port()
    child = await spawn("floor", [sys.executable, "-m", "bot.bench.floor", str(port)], workdir)
    url = f"http://127.0.0.1:{port}/"
    async with aiohttp.ClientSession() as session:

        async def answers() -> None:
            async with session.post(url) as response:
                response.raise_for_status()

        await until(child, answers, (aiohttp.ClientError, OSError))
    return child, url


class AgentProcess(Child):
    """``python -m bot.bench.agent``: JSON commands on its stdin, answers on its stdout."""

    @classmethod
    async def start(cls, workdir: Path, redis_url: str) -> AgentProcess:
        log = workdir / "agent.log"
        with log.open("wb") as err:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot.bench.agent",
                cwd=workdir,
                env=worker_env({"REDIS_URL": redis_url}),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                limit=64 * 1024 * 1024,  # one answer carries every call of a batch
            )
        return cls("agent", process, log)

    def send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command).encode() + b"\n")

    async def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        self.send(command)
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the agent process exited:\n{self.tail()}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"agent: {answer['error']}")
        return answer

    async def stop(self) -> None:
        if self.process.returncode is None and self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.send({"op": "quit"})
                await self.process.stdin.drain()
        await super().stop()


async def until(
    child: Child, probe: Callable[[], Awaitable[object]], errors: tuple[type[BaseException], ...]
) -> None:
    """Call ``probe`` until it succeeds; RuntimeError if the child exits or START_TIMEOUT passes."""
    until = time.monotonic() + START_TIMEOUT
    while True:
        if child.process.returncode is not None:
            raise RuntimeError(f"{child.name} exited with {child.process.returncode}:\n{child.tail()}")
        try:
            await probe()
            return
        except errors:
            if time.monotonic() > until:
                raise RuntimeError(
                    f"{child.name} did not start within {START_TIMEOUT:.0f}s:\n{child.tail()}"
                ) from None
            await asyncio.sleep(0.05)
