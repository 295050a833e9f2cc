"""Readiness and a clean stop: ``/readyz`` for the load balancer, SIGTERM with jobs in flight."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from bot.approvals.model import NewRequest
from bot.approvals.store import RequestStore
from tests.conftest import posted
from tests.test_cli import configured, serving

pytestmark = pytest.mark.slow  # a worker process stopped with SIGTERM; /readyz waited on for seconds

STOP_BOUND = 25
"""Seconds a worker has from SIGTERM to its exit (Heroku sends SIGKILL at 30)."""


async def get(url: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def test_readyz_waits_for_slack_and_redis_and_healthz_stays_cheap(start_worker, slack, redis_server):
    slack.fail("auth.test", "internal_error", times=1000)  # Slack cannot say whose workspace this is
    worker = await start_worker()
    status, body = await get(f"{worker.url}/readyz")
    assert status == 503 and body["ready"] is False and "auth.test" in body["slack"]
    assert (await get(f"{worker.url}/healthz"))[0] == 200  # alive, just not ready

    slack.clear_faults()  # Slack answers again: the worker learns its installation on its next try
    async with asyncio.timeout(15):
        while (await get(f"{worker.url}/readyz"))[0] != 200:
            await asyncio.sleep(0.1)
    assert (await get(f"{worker.url}/readyz"))[1] == {"ready": True}


async def test_sigterm_with_a_job_in_flight_exits_0_and_another_worker_takes_the_job_at_once(
    tmp_path, redis_server, redis, slack, start_worker
):
    # JOB_RETRY_AFTER far away: only a job given back at once is posted within this test.
    settings = configured(redis_server, slack, JOB_RETRY_AFTER="600")
    async with serving(tmp_path, settings, ready="/readyz") as served:
        slack.hang("chat.postMessage")  # the worker's post is in flight, and stays so
        await RequestStore(redis).create(
            NewRequest(id="a" * 24, tool_name="Bash", tool_input={"command": "make deploy"})
        )
        await slack.wait_for(lambda: slack.hung == ["chat.postMessage"])
        started = time.monotonic()
        assert await served.stop(bound=STOP_BOUND + 5) == 0, served.stderr[-2000:]
        assert time.monotonic() - started < STOP_BOUND

    await start_worker(job_retry_after=600)  # another worker, started after the first one left
    message = await posted(slack)
    assert "make deploy" in str(message.blocks)
