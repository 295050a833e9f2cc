"""Shared fixtures: a real redis-server, the fake Slack Web API, bot workers, approvers."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from claude_agent_sdk import ToolPermissionContext

from bot import SlackApprover, metrics
from bot.approvals.store import RequestStore
from bot.redis_client import RedisClient, connect
from bot.web import create_app
from tests.cluster_fixtures import (  # noqa: F401
    CLUSTER,
    STANDALONE,
    cluster,
    cluster_redis,
    one_node_cluster,
    redis_or_cluster,
    replicated_pair,
    sentinels,
    shared_cluster,
)
from tests.fakes.bot_settings import settings_for
from tests.fakes.redis_cluster import Cluster, OneNodeCluster
from tests.fakes.redis_server import RedisServer
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_records import PostedMessage
from tests.fakes.slack_rules import DEFAULT_RATE_SCALE
from tests.fakes.worker import Worker


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "unlimited_slack: the fake Slack enforces no rate limits in this test (by default it enforces "
        "Slack's, sped up by DEFAULT_RATE_SCALE, and the bot's budget matches)",
    )
    config.addinivalue_line(
        "markers",
        "slow: runs the real Claude Code CLI (SDK query, claude -p, the TUI), a browser, worker or Redis "
        'processes that are killed and restarted, or a benchmark; -m "not slow" leaves them out',
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """A test that timed out while awaiting: add where each of its tasks was waiting.

    pytest-timeout's SIGALRM fails an async test inside the event loop's ``select()``, so
    the traceback shows only the loop; the tasks' stacks say which await never finished."""
    report: pytest.TestReport = yield
    if call.excinfo is None or "from pytest-timeout" not in str(call.excinfo.value):
        return report
    for entry in call.excinfo.traceback:
        loop = entry.frame.f_locals.get("self") if entry.name == "run_until_complete" else None
        if isinstance(loop, asyncio.AbstractEventLoop):
            test = entry.frame.f_locals.get("future")  # the test's own task: shown first
            stacks = io.StringIO()
            for task in sorted(asyncio.all_tasks(loop), key=lambda t: t is not test):
                task.print_stack(file=stacks)
            report.sections.append(("tasks still awaiting at the timeout", stacks.getvalue()))
            break
    return report


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    try:
        server = RedisServer(tmp_path_factory.mktemp("redis"))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_target(request: pytest.FixtureRequest) -> Iterator[RedisServer | OneNodeCluster | Cluster]:
    """The Redis the test's agents, workers and ``redis`` client use: the standalone server, or
    the 1-node cluster for a test parametrised with ``ON_BOTH`` (where cross-slot access fails).

    On the cluster no job may fail either: a worker's script refused there (a key of another
    slot) would only show as a retry, while the click path still works."""
    kind = getattr(request, "param", STANDALONE)
    if kind == STANDALONE:
        yield request.getfixturevalue("redis_server")
        return
    failed_before = _failed_jobs()
    caplog: pytest.LogCaptureFixture = request.getfixturevalue("caplog")
    yield request.getfixturevalue("one_node_cluster" if kind == CLUSTER else "shared_cluster")
    assert _failed_jobs() == failed_before, "a worker's job failed on the cluster (see the log)"
    records = [r for phase in ("setup", "call") for r in caplog.get_records(phase)] + caplog.records
    said = [f"{r.getMessage()} {r.exc_info[1] if r.exc_info else ''}" for r in records]
    refused = [line for line in said if CROSS_SLOT in line]
    assert refused == [], "a script reached a key of another slot"


CROSS_SLOT = "do not hash to the same slot"
"""What a cluster node answers a script that reaches a key of another slot."""


def _failed_jobs() -> float:
    return sum(
        sample.value
        for metric in (metrics.JOB_RETRIES, metrics.JOBS_DEAD)
        for family in metric.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    )


@pytest.fixture
async def redis(redis_target: RedisServer | OneNodeCluster | Cluster) -> AsyncIterator[RedisClient]:
    """A client on an empty database (every test starts from nothing)."""
    if isinstance(redis_target, RedisServer) and redis_target.process is None:  # a fault test stopped it
        redis_target.start()
    client = connect(redis_target.url, name="tests")
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
def store(redis: RedisClient) -> RequestStore:
    return RequestStore(redis)


@pytest.fixture
async def slack(request: pytest.FixtureRequest) -> AsyncIterator[FakeSlack]:
    """The fake Slack, enforcing Slack's rate limits sped up (``unlimited_slack`` marker: none)."""
    unlimited = request.node.get_closest_marker("unlimited_slack") is not None
    async with FakeSlack.start(rate_scale=None if unlimited else DEFAULT_RATE_SCALE) as fake:
        yield fake
        assert fake.invalid == [], f"the bot sent payloads Slack would reject: {fake.invalid}"


@pytest.fixture
async def start_worker(
    redis_target: RedisServer | OneNodeCluster | Cluster, slack: FakeSlack, redis: RedisClient
) -> AsyncIterator[Callable[..., Awaitable[Worker]]]:
    """Factory: start a bot worker in this event loop (several may run at once)."""
    runners: list[web.AppRunner] = []
    session = aiohttp.ClientSession()

    async def start(**overrides: Any) -> Worker:
        app = create_app(settings_for(redis_target, slack, **overrides), consumer=f"worker-{len(runners)}")
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        return Worker(f"http://{host}:{port}", session, slack, app)

    yield start
    await session.close()  # first: a kept-alive connection would hold up the workers' shutdown
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def make_approver(
    redis_target: RedisServer | OneNodeCluster | Cluster, redis: RedisClient
) -> AsyncIterator[Callable[..., Awaitable[SlackApprover]]]:
    approvers: list[SlackApprover] = []

    async def make(**kwargs: Any) -> SlackApprover:
        kwargs.setdefault("timeout", 60)
        approver = SlackApprover(kwargs.pop("redis_url", redis_target.url), **kwargs)
        await approver.start()
        approvers.append(approver)
        return approver

    yield make
    for approver in approvers:
        await approver.close()


def policy_file(directory: Path, body: str) -> Path:
    """Write a YAML policy for ``start_worker(approval_policy=...)``."""
    path = directory / "policy.yaml"
    path.write_text(body)
    return path


def context(tool_use_id: str, **kwargs: Any) -> ToolPermissionContext:
    """What the SDK passes to can_use_tool."""
    return ToolPermissionContext(tool_use_id=tool_use_id, **kwargs)


async def posted(slack: FakeSlack, count: int = 1) -> PostedMessage:
    """The ``count``-th request message the bot posted (thread replies and failed attempts aside), once it is there."""

    def roots() -> list[Any]:
        return [
            c
            for c in slack.calls_to("chat.postMessage")
            if c.response.get("ok") and not c.args.get("thread_ts")
        ]

    await slack.wait_for(lambda: len(roots()) >= count)
    call = roots()[count - 1]
    return slack.message(call.response["channel"], call.response["ts"])


async def cancelled(*tasks: asyncio.Task) -> None:
    """Cancel tasks the way the SDK does, and let them finish their clean-up."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def within(seconds: float, failure: str) -> AsyncIterator[None]:
    """Bound a polling wait: if the block runs past ``seconds``, the test fails saying ``failure``."""
    scope = asyncio.timeout(seconds)
    try:
        async with scope:
            yield
    except TimeoutError:
        if not scope.expired():
            raise  # a timeout of the code under test, not this bound
        raise AssertionError(f"{failure} (waited {seconds}s)") from None
