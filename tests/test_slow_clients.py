"""Slow and idle clients cannot starve a worker (``serve``'s HTTP limits).

A client that sends its request head a byte at a time, or thousands of them,
must not keep Slack's clicks out, hold up the worker's own Redis and Slack
connections, or flood the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

import bot
from bot import http_limits
from bot.log_floods import FloodFilter
from bot.slack.ids import Action
from bot.web import create_app
from tests.conftest import cancelled, context, posted
from tests.fakes.bot_settings import CHANNEL, SIGNING_SECRET, settings_for
from tests.fakes.redis_server import free_port
from tests.fakes.slack_block_actions import block_actions
from tests.fakes.slack_signing import signed_form
from tests.fakes.worker import _button_value

SLOW_HEAD = b"POST /slack/events HTTP/1.1\r\nHost: worker\r\n"


async def _slow_client(port: int, opened: list[asyncio.StreamWriter], every: float) -> None:
    """Start a request and never finish its head: one more header line every ``every`` seconds."""
    with contextlib.suppress(OSError):
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        opened.append(writer)
        writer.write(SLOW_HEAD)
        while True:
            await writer.drain()
            await asyncio.sleep(every)
            writer.write(b"X-Slow: 1\r\n")


async def _closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), within) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@contextlib.asynccontextmanager
async def _guarded_worker(redis_server, slack, **overrides) -> AsyncIterator[int]:
    """A worker served the way ``serve`` serves it (in this process); yields its port."""
    port = free_port()
    settings = settings_for(redis_server, slack, port=port, **overrides)
    app = create_app(settings, consumer="guarded")
    runner = await http_limits.start(app, settings, host="127.0.0.1", limit_logs=False)
    try:
        yield port
    finally:
        await runner.cleanup()


@pytest.mark.slow
async def test_a_request_head_that_trickles_in_is_cut_off_but_an_idle_connection_is_kept(
    redis_server, slack, redis
):
    async with _guarded_worker(
        redis_server, slack, http_header_timeout=0.5, http_keepalive_timeout=30
    ) as port:
        # One header line every 0.2 s: never idle long, never done.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(SLOW_HEAD)
        trickle = asyncio.create_task(_keep_writing(writer, 0.2))
        assert await _closed_by_server(reader, 5)
        trickle.cancel()

        # A kept-alive connection between requests is not a slow request.
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
        idle_writer.write(b"GET /healthz HTTP/1.1\r\nHost: worker\r\n\r\n")
        assert (await idle_reader.readline()).startswith(b"HTTP/1.1 200")
        assert not await _closed_by_server(idle_reader, 1.5)  # three header timeouts later
        idle_writer.write(b"GET /healthz HTTP/1.1\r\nHost: worker\r\n\r\n")
        await _drain_response(idle_reader)
        idle_writer.write(b"GET /healthz HTTP/1.1\r\nHost: worker\r\n\r\n")
        assert (await asyncio.wait_for(idle_reader.readline(), 5)).startswith(b"HTTP/1.1 200")
        idle_writer.close()
        writer.close()


async def _keep_writing(writer: asyncio.StreamWriter, every: float) -> None:
    with contextlib.suppress(OSError):
        while True:
            await asyncio.sleep(every)
            writer.write(b"X-Slow: 1\r\n")
            await writer.drain()


async def _drain_response(reader: asyncio.StreamReader) -> None:
    length = 0
    while (line := await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)


async def test_past_the_connection_cap_slow_clients_make_room_for_a_click(
    redis_server, slack, redis, make_approver
):
    async with _guarded_worker(redis_server, slack, http_max_connections=8, http_header_timeout=30) as port:
        opened: list[asyncio.StreamWriter] = []
        flood = [asyncio.create_task(_slow_client(port, opened, 0.5)) for _ in range(40)]
        async with asyncio.timeout(5):
            while len(opened) < 40:
                await asyncio.sleep(0.05)
        approver = await make_approver()
        task = asyncio.create_task(
            approver.can_use_tool("Bash", {"command": "make deploy"}, context("toolu_cap"))
        )
        message = await posted(slack)
        await _click(port, message)
        assert (await asyncio.wait_for(task, 10)).behavior == "allow"
        for client in flood:
            client.cancel()
        await asyncio.gather(*flood, return_exceptions=True)
        for writer in opened:
            writer.close()


async def _click(port: int, message) -> None:
    payload = block_actions(
        "U0ALICE",
        Action.APPROVE.value,
        _button_value(message, Action.APPROVE),
        message=message.as_dict(),
        channel=CHANNEL,
    )
    body, headers = signed_form(payload, SIGNING_SECRET)
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.post(f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers) as response,
    ):
        assert response.status == 200


@pytest.mark.slow
async def test_a_slow_client_flood_under_a_low_open_file_limit_starves_nothing(
    redis_server, slack, redis, make_approver, tmp_path: Path
):
    """The report: under ``ulimit -n`` a flood of slow clients wrote 31,000 log lines in 10 s and held up a post for a minute."""
    port = free_port()
    settings = settings_for(redis_server, slack, port=port)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REDIS_", "APPROVAL_", "HTTP_"))
    }
    env.update(
        REDIS_URL=settings.redis_url,
        SLACK_BOT_TOKEN=slack.token,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.base_url,
        APPROVAL_CHANNEL=CHANNEL,
        PORT=str(port),
        SWEEP_INTERVAL="0.05",
        PYTHONPATH=str(Path(bot.__file__).resolve().parents[1]),  # the bot these tests import
    )
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = await asyncio.create_subprocess_exec(
            "prlimit",
            "--nofile=256:256",
            sys.executable,
            "-m",
            "bot",
            "serve",
            env=env,
            cwd=tmp_path,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    opened: list[asyncio.StreamWriter] = []
    flood: list[asyncio.Task[None]] = []
    task = None
    try:
        await _until_healthy(port, worker)
        flood = [asyncio.create_task(_slow_client(port, opened, 1.0)) for _ in range(800)]
        await asyncio.sleep(1.0)  # the flood is on (how many got in depends on the worker)
        started = time.monotonic()
        approver = await make_approver()
        task = asyncio.create_task(
            approver.can_use_tool("Bash", {"command": "make deploy"}, context("toolu_flood"))
        )
        message = await posted(slack)  # waits 5 s at most: the post is not held up
        await _click(port, message)
        assert (await asyncio.wait_for(task, 10)).behavior == "allow"
        # Keep flooding for the rest of 10 s, as in the report.
        await asyncio.sleep(max(0.0, 10 - (time.monotonic() - started)))
    finally:
        for client in flood:
            client.cancel()
        await asyncio.gather(*flood, return_exceptions=True)
        for writer in opened:
            writer.close()
        if task is not None and not task.done():
            await cancelled(task)
        with contextlib.suppress(ProcessLookupError):
            worker.terminate()
        await asyncio.wait_for(worker.wait(), 15)
    lines = log_path.read_text(errors="replace").splitlines()
    assert len(lines) < 100, "\n".join(lines[:40])
    assert not any("Too many open files" in line for line in lines), "\n".join(lines[:40])


async def _until_healthy(port: int, worker: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        async with asyncio.timeout(30):
            while True:
                if worker.returncode is not None:
                    pytest.fail(f"the worker exited with {worker.returncode}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)


def test_repeated_log_lines_are_let_through_a_few_times_then_counted():
    import logging

    now = [0.0]
    flood = FloodFilter(burst=3, interval=10, clock=lambda: now[0])

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, message, None, None)

    accept = "socket.accept() out of system resource\nsocket: <fd=7>"
    passed = [flood.filter(record(accept)) for _ in range(100)]
    assert passed.count(True) == 3
    assert flood.filter(record("another kind of line"))  # counted apart
    now[0] = 10.0
    summary = record(accept)
    assert flood.filter(summary)
    assert "[97 more like this in the last 10 s not logged]" in summary.getMessage()
