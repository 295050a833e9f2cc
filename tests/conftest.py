"""Shared fixtures: a real redis-server, the fake Slack Web API, bot workers, approvers."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from claude_agent_sdk import ToolPermissionContext
from redis.asyncio import Redis

from bot import Settings, SlackApprover
from bot.approvals.store import RequestStore
from bot.redis_client import connect
from bot.slack.ids import (
    CHOICE_INPUT,
    EDIT_INPUT,
    OWN_ANSWER_INPUT,
    SLASH_COMMAND,
    Action,
    Field,
    Modal,
    edit_block,
    own_answer_block,
)
from bot.web import create_app
from tests.cluster_fixtures import cluster, cluster_redis, one_node_cluster, redis_or_cluster, sentinels  # noqa: F401
from tests.fakes.redis_server import RedisServer
from tests.fakes.slack_api import DEFAULT_RATE_SCALE, FakeSlack, PostedMessage
from tests.fakes.slack_payloads import (
    block_actions,
    sign,
    signed_form,
    signed_json,
    slash_command,
    view_submission,
)

SIGNING_SECRET = "test-signing-secret"
CHANNEL = "C0APPROVALS"

UNLIMITED_RATE_SCALE = 1e6
"""The bot's ``slack_rate_scale`` against a fake without rate limits (so, in effect, none)."""


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
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A client on an empty database (every test starts from nothing)."""
    if redis_server.process is None:  # a fault test stopped it
        redis_server.start()
    client = connect(redis_server.url, name="tests")
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
def store(redis: Redis) -> RequestStore:
    return RequestStore(redis)


@pytest.fixture
async def slack(request: pytest.FixtureRequest) -> AsyncIterator[FakeSlack]:
    """The fake Slack, enforcing Slack's rate limits sped up (``unlimited_slack`` marker: none)."""
    unlimited = request.node.get_closest_marker("unlimited_slack") is not None
    async with FakeSlack.start(rate_scale=None if unlimited else DEFAULT_RATE_SCALE) as fake:
        yield fake
        assert fake.invalid == [], f"the bot sent payloads Slack would reject: {fake.invalid}"


def settings_for(redis_server: RedisServer, slack: FakeSlack, **overrides: Any) -> Settings:
    """Settings as a deployment would set them, pointed at the test's servers (no .env)."""
    values: dict[str, Any] = {
        "redis_url": redis_server.url,
        "slack_bot_token": slack.token,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": slack.base_url,
        "approval_channel": CHANNEL,
        "approval_timeout": 60,
        "job_retry_after": 30,
        "sweep_interval": 0.05,
        # The budget runs at the speed the fake enforces Slack's limits at.
        "slack_rate_scale": slack.rate_scale or UNLIMITED_RATE_SCALE,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


class Worker:
    """A running ``serve`` worker, and a person's hands on Slack's side."""

    def __init__(
        self, url: str, session: aiohttp.ClientSession, slack: FakeSlack, app: web.Application | None = None
    ) -> None:
        self.url = url
        self.session = session
        self.slack = slack
        self.app = app
        """The worker's application (its policy holder: ``app[bot.web.POLICY]``)."""

    async def post_signed(
        self, payload: dict[str, Any], *, secret: str = SIGNING_SECRET, timestamp: int | None = None
    ) -> aiohttp.ClientResponse:
        body, headers = signed_form(payload, secret, timestamp)
        async with self.session.post(f"{self.url}/slack/events", data=body, headers=headers) as response:
            await response.read()
            return response

    async def event(self, body: dict[str, Any]) -> int:
        """Deliver an Events API request; returns the HTTP status."""
        raw, headers = signed_json(body, SIGNING_SECRET)
        async with self.session.post(f"{self.url}/slack/events", data=raw, headers=headers) as response:
            await response.read()
            return response.status

    async def command(self, user: str, text: str = "") -> dict[str, Any]:
        """Run ``/approvals <text>`` as ``user``; returns the ephemeral answer."""
        body = urlencode(slash_command(user, SLASH_COMMAND, text)).encode()
        headers = {**sign(body, SIGNING_SECRET), "Content-Type": "application/x-www-form-urlencoded"}
        async with self.session.post(f"{self.url}/slack/events", data=body, headers=headers) as response:
            assert response.status == 200
            return await response.json()

    async def click(
        self, user: str, action: Action, message: PostedMessage, *, name: str | None = None
    ) -> aiohttp.ClientResponse:
        """Click a button the message shows (ValueError if it shows none)."""
        payload = block_actions(
            user,
            action.value,
            _button_value(message, action),
            message=message.as_dict(),
            channel=message.channel,
            user_name=name or user.lower(),
        )
        response = await self.post_signed(payload)
        assert response.status == 200, response.status
        return response

    async def deny(
        self,
        user: str,
        message: PostedMessage,
        reason: str = "",
        *,
        name: str | None = None,
        stop: bool = False,
    ) -> aiohttp.ClientResponse:
        """Click Deny (or Deny and stop), then submit the modal Slack opened, as a person would."""
        updates = len(self.slack.calls_to("views.update"))
        await self.click(user, Action.DENY_STOP if stop else Action.DENY, message, name=name)
        update = await self.slack.wait_for_call("views.update", count=updates + 1)
        view = self.slack.views[update.args["view_id"]]
        payload = view_submission(
            user,
            view["callback_id"],
            view["private_metadata"],
            {Field.REASON_BLOCK.value: {Field.REASON_INPUT.value: reason}},
            user_name=name or user.lower(),
            view=view,
        )
        return await self.post_signed(payload)

    async def modify(
        self, user: str, message: PostedMessage, values: dict[str, str], *, name: str | None = None
    ) -> dict[str, Any]:
        """Click Modify, then submit the modal with ``values`` (field key → text); returns Slack's ack body."""
        updates = len(self.slack.calls_to("views.update"))
        await self.click(user, Action.MODIFY, message, name=name)
        update = await self.slack.wait_for_call("views.update", count=updates + 1)
        view = self.slack.views[update.args["view_id"]]
        payload = view_submission(
            user,
            Modal.MODIFY.value,
            view["private_metadata"],
            {edit_block(key): {EDIT_INPUT: value} for key, value in values.items()},
            user_name=name or user.lower(),
            view=view,
        )
        body, headers = signed_form(payload, SIGNING_SECRET)
        async with self.session.post(f"{self.url}/slack/events", data=body, headers=headers) as response:
            assert response.status == 200
            text = await response.text()
        return json.loads(text) if text else {}

    async def answer(
        self,
        user: str,
        message: PostedMessage,
        chosen: dict[int, list[int]],
        typed: dict[int, str] | None = None,
    ) -> dict[str, Any]:
        """Click Answer…, pick options (by index) and type answers in the form, submit; returns Slack's ack body."""
        updates = len(self.slack.calls_to("views.update"))
        await self.click(user, Action.ANSWER, message)
        update = await self.slack.wait_for_call("views.update", count=updates + 1)
        view = self.slack.views[update.args["view_id"]]
        values: dict[str, dict[str, Any]] = {}
        for block in view["blocks"]:
            if block.get("type") != "input" or not block["block_id"].startswith("answer."):
                continue
            index = int(block["block_id"].split(".")[1])
            element = block["element"]
            picked = [o for i, o in enumerate(element["options"]) if i in chosen.get(index, [])]
            if element["type"] == "checkboxes":
                values[block["block_id"]] = {CHOICE_INPUT: {"type": "checkboxes", "selected_options": picked}}
            else:
                values[block["block_id"]] = {
                    CHOICE_INPUT: {"type": "static_select", "selected_option": picked[0] if picked else None}
                }
            values[own_answer_block(index)] = {OWN_ANSWER_INPUT: (typed or {}).get(index, "")}
        payload = view_submission(user, Modal.ANSWER.value, view["private_metadata"], values, view=view)
        body, headers = signed_form(payload, SIGNING_SECRET)
        async with self.session.post(f"{self.url}/slack/events", data=body, headers=headers) as response:
            assert response.status == 200
            text = await response.text()
        return json.loads(text) if text else {}


def _button_value(message: PostedMessage, action: Action) -> str:
    for block in message.blocks:
        for element in block.get("elements", []):
            if element.get("action_id") == action.value:
                return element["value"]
    raise ValueError(f"the message shows no {action.value} button")


@pytest.fixture
async def start_worker(
    redis_server: RedisServer, slack: FakeSlack, redis: Redis
) -> AsyncIterator[Callable[..., Awaitable[Worker]]]:
    """Factory: start a bot worker in this event loop (several may run at once)."""
    runners: list[web.AppRunner] = []
    session = aiohttp.ClientSession()

    async def start(**overrides: Any) -> Worker:
        app = create_app(settings_for(redis_server, slack, **overrides), consumer=f"worker-{len(runners)}")
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
    redis_server: RedisServer, redis: Redis
) -> AsyncIterator[Callable[..., Awaitable[SlackApprover]]]:
    approvers: list[SlackApprover] = []

    async def make(**kwargs: Any) -> SlackApprover:
        kwargs.setdefault("timeout", 60)
        approver = SlackApprover(kwargs.pop("redis_url", redis_server.url), **kwargs)
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
