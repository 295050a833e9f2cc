"""Log lines as an operator's pipeline reads them (``LOG_FORMAT``): one JSON object per line,
tagged with the request, the click and the worker, and never a secret or a whole tool input."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot import logs
from bot.approvals.model import input_hash
from bot.slack.ids import Action
from tests.conftest import context, posted
from tests.fakes.bot_settings import SIGNING_SECRET
from tests.test_cli import configured, run, serving

SLACK_TOKEN = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"
API_KEY = "sk-ant-api03-Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0"
BLOB = "A" * 10_000 + "THE-END"
TOOL_INPUT = {
    "command": f"curl -H 'Authorization: Bearer {SLACK_TOKEN}' https://slack.com/api/auth.test\n"
    f"export ANTHROPIC_API_KEY={API_KEY}\x1b[31m\x00\u2028done",
    "description": "Check the token",
    "data": BLOB,
}


class Lines:
    """A stream the JSON handler writes to; ``wait`` awaits a line the test expects."""

    def __init__(self) -> None:
        self.text = ""
        self._written = asyncio.Event()

    def write(self, text: str) -> int:
        self.text += text
        self._written.set()
        return len(text)

    def flush(self) -> None:
        pass

    def parsed(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines()]

    async def wait(self, found: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        async def look() -> dict[str, Any]:
            while True:
                for line in self.parsed():
                    if found(line):
                        return line
                self._written.clear()
                await self._written.wait()

        return await asyncio.wait_for(look(), 10)


@pytest.fixture
def json_lines() -> Iterator[Lines]:
    """The root logger writes JSON to a ``Lines`` for the test (``logs.configure``), as ``serve`` would."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    lines = Lines()
    # DEBUG: not even a debugging worker writes a secret or a whole input.
    logs.configure("json", level=logging.DEBUG, stream=lines)  # type: ignore[arg-type]
    yield lines
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    for handler in saved:
        root.addHandler(handler)
    root.setLevel(level)


async def test_a_request_s_life_is_json_lines_tagged_with_it_and_no_secret_or_whole_input(
    json_lines, start_worker, make_approver, slack
):
    worker = await start_worker(log_format="json")
    approver = await make_approver(agent_name="deploy-bot")
    decision = asyncio.create_task(approver.can_use_tool("Bash", TOOL_INPUT, context("toolu_logs")))
    message = await posted(slack)
    await worker.click("U_ALICE", Action.APPROVE, message, name="alice")
    assert (await asyncio.wait_for(decision, 5)).behavior == "allow"

    created = await json_lines.wait(lambda line: line["event"] == "request.created")
    request_id = created["request_id"]
    await json_lines.wait(lambda line: line["event"] == "request.updated" and line.get("state") == "approved")

    lines = json_lines.parsed()
    # Every line is one JSON object with the fixed fields.
    assert lines and all({"time", "level", "logger", "message", "event"} <= line.keys() for line in lines)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"]) for line in lines)

    about = [line for line in lines if line.get("request_id") == request_id]
    events = [line["event"] for line in about]
    for event in (
        "request.created",
        "request.routed",
        "request.posted",
        "click",
        "request.decided",
        "request.updated",
    ):
        assert event in events, events
    untagged = [line["message"] for line in about if line["logger"].startswith("bot.") and not line["event"]]
    assert untagged == []

    # What is said about the input: its hash and a short escaped preview.
    assert created["tool_use_id"] == "toolu_logs"
    assert created["input_hash"] == input_hash(TOOL_INPUT)
    assert 0 < len(created["input_preview"]) <= logs.PREVIEW_CHARS
    assert "\n" not in created["input_preview"] and "\x1b" not in created["input_preview"]

    click = next(line for line in about if line["event"] == "click")
    assert (click["user"], click["outcome"], click["worker"]) == ("U_ALICE", "approved", "worker-0")
    decided = next(line for line in about if line["event"] == "request.decided")
    assert (decided["state"], decided["rule"], decided["worker"]) == ("approved", "default", "worker-0")
    posted_line = next(line for line in about if line["event"] == "request.posted")
    assert posted_line["worker"] == "worker-0"  # the job loop's lines name their worker too
    assert any(line["event"] == "worker.started" and line["worker"] == "worker-0" for line in lines)

    # No secret and no more of the input than a preview, in any line.
    raw = json_lines.text
    for secret in (SLACK_TOKEN, SLACK_TOKEN[:20], API_KEY, API_KEY[:16], "THE-END", "A" * 100, slack.token):
        assert secret not in raw
    assert all(len(line) < 2000 for line in raw.splitlines())


async def test_a_slack_error_is_a_slack_error_line_naming_the_method_and_the_request(
    json_lines, start_worker, make_approver, slack
):
    slack.fail("chat.postMessage", "channel_not_found")
    await start_worker()
    approver = await make_approver()
    result = await asyncio.wait_for(
        approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_nowhere")), 10
    )
    assert result.behavior == "deny"
    line = await json_lines.wait(lambda line: line["event"] == "slack.error")
    assert (line["method"], line["error"], line["state"]) == (
        "chat.postMessage",
        "channel_not_found",
        "undeliverable",
    )
    assert line["tool_use_id"] == "toolu_nowhere" and line["request_id"] and line["worker"] == "worker-0"
    assert line["level"] == "ERROR"


def test_the_preview_escapes_cuts_and_stars_out_credentials():
    shown = logs.preview({"command": f"echo {SLACK_TOKEN}\n\x00\u202e", "url": "redis://:hunter2@db:6379/0"})
    assert SLACK_TOKEN[:8] not in shown and "hunter2" not in shown
    assert shown.isascii() and shown.isprintable() and len(shown) <= logs.PREVIEW_CHARS
    assert logs.preview(BLOB) == "A" * (logs.PREVIEW_CHARS - 1) + "…"


@pytest.mark.slow
async def test_check_logs_json_when_asked_and_text_by_default(tmp_path, redis_server, slack):
    for log_format in ("json", "text"):
        code, out, err = await run(
            "check", cwd=tmp_path, **configured(redis_server, slack, LOG_FORMAT=log_format)
        )
        assert code == 0, err
        assert [line.split(" ")[0] for line in out.splitlines()] == [
            "ok",
            "ok",
            "ok",
        ]  # the report itself: text
        for line in err.splitlines():  # check may log nothing at all; what it logs follows LOG_FORMAT
            if log_format == "json":
                assert isinstance(json.loads(line), dict)
            else:
                assert not line.startswith("{")


async def _serve_log(tmp_path, redis_server, slack, log_format: str) -> str:
    """Start ``serve``, wait for /healthz, stop it with SIGTERM; its stderr."""
    async with serving(tmp_path, configured(redis_server, slack, LOG_FORMAT=log_format)) as served:
        pass
    assert served.process.returncode == 0, served.stderr[-2000:]
    return served.stderr


@pytest.mark.slow
async def test_serve_writes_json_lines_naming_the_worker_and_text_by_default(tmp_path, redis_server, slack):
    lines = [
        json.loads(line) for line in (await _serve_log(tmp_path, redis_server, slack, "json")).splitlines()
    ]
    started = next(line for line in lines if line["event"] == "worker.started")
    assert started["level"] == "INFO" and started["logger"] == "bot.web" and started["worker"]
    assert SIGNING_SECRET not in json.dumps(lines) and slack.token not in json.dumps(lines)

    text = await _serve_log(tmp_path, redis_server, slack, "text")
    assert re.search(
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO bot\.web: worker \S+ started$", text, re.MULTILINE
    ), text
    assert not any(line.startswith("{") for line in text.splitlines())


@pytest.mark.slow
async def test_an_invalid_log_format_is_one_clear_line_and_exit_2(tmp_path):
    code, out, err = await run("serve", cwd=tmp_path, LOG_FORMAT="xml")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [err.strip()]
    assert err.startswith("error: LOG_FORMAT is invalid") and "Traceback" not in err
