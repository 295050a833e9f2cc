"""``python -m bot …`` as an operator runs it: real subprocesses."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.bot_settings import CHANNEL, SIGNING_SECRET
from tests.fakes.redis_server import free_port

pytestmark = pytest.mark.slow  # every test runs `python -m bot` in a process of its own

SETTINGS = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "REDIS_URL",
    "APPROVAL_CHANNEL",
    "APPROVAL_TIMEOUT",
    "APPROVAL_POLICY",
    "PORT",
    "LOG_FORMAT",
)
ROOT = Path(__file__).resolve().parents[1]


def env(**values: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    base["PYTHONPATH"] = str(ROOT)
    return {**base, **values}


async def run(*args: str, cwd: Path, **values: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=env(**values),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


def configured(redis_server, slack, **values: str) -> dict[str, str]:
    defaults = {
        "REDIS_URL": redis_server.url,
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.base_url,
        "APPROVAL_CHANNEL": CHANNEL,
    }
    return {**defaults, **values}


class Served:
    """A ``python -m bot serve`` process (``serving``); ``stderr`` once it has exited."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process, self.port, self.stderr = process, port, ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self, signum: int = signal.SIGTERM, bound: float = 20) -> int:
        """Send ``signum``, wait (bounded) for the exit; the exit status."""
        if self.process.returncode is None:
            self.process.send_signal(signum)
        _out, err = await asyncio.wait_for(self.process.communicate(), bound)
        self.stderr = err.decode()
        assert self.process.returncode is not None
        return self.process.returncode


@asynccontextmanager
async def serving(cwd: Path, values: dict[str, str], *, ready: str = "/healthz") -> AsyncIterator[Served]:
    """``serve`` on a free port with these settings, once ``ready`` answers 200; stopped (SIGTERM) at the end."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        cwd=cwd,
        env=env(**{**values, "PORT": str(port)}),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    served = Served(process, port)
    try:
        async with aiohttp.ClientSession() as session, asyncio.timeout(30):
            while True:
                if process.returncode is not None:
                    await served.stop()
                    raise AssertionError(f"serve exited {process.returncode}: {served.stderr[-2000:]}")
                try:
                    async with session.get(served.url + ready) as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)
        yield served
    finally:
        if process.returncode is None:
            await served.stop()


async def test_a_missing_setting_is_one_clear_line_and_exit_2(tmp_path):
    code, _out, err = await run("serve", cwd=tmp_path)
    assert code == 2
    assert err.strip().splitlines() == [err.strip()]
    assert err.startswith("error: REDIS_URL is not set") and "Traceback" not in err

    code, _out, err = await run("check", cwd=tmp_path, REDIS_URL="redis://127.0.0.1:1/0")
    assert code == 2 and err.startswith("error: SLACK_BOT_TOKEN is not set")

    code, _out, err = await run("serve", cwd=tmp_path, APPROVAL_TIMEOUT="soon")
    assert code == 2 and err.startswith("error: APPROVAL_TIMEOUT is invalid")


async def test_settings_come_from_a_dotenv_file_too(tmp_path, redis_server, slack):
    values = configured(redis_server, slack)
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    code, out, err = await run("check", cwd=tmp_path)
    assert code == 0, err
    assert [line.split(" ")[0] for line in out.splitlines()] == ["ok", "ok", "ok"]


async def test_check_reports_each_check_on_one_line(tmp_path, redis_server, slack):
    code, out, _err = await run("check", cwd=tmp_path, **configured(redis_server, slack))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("ok   redis: redis://127.0.0.1")
    assert lines[1].startswith("ok   slack token: bot ")
    assert lines[2] == f"ok   approval channel: #approvals ({CHANNEL})"

    code, out, _err = await run(
        "check",
        cwd=tmp_path,
        **configured(
            redis_server,
            slack,
            APPROVAL_CHANNEL="C0NOWHERE",
            REDIS_URL=f"redis://:pw@127.0.0.1:{free_port()}/0",
        ),
    )
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("FAIL redis: redis://:***@127.0.0.1") and "pw" not in out
    assert lines[2] == "FAIL approval channel: C0NOWHERE: channel_not_found"


async def test_serve_runs_a_worker_that_answers_healthz(tmp_path, redis_server, slack):
    async with serving(tmp_path, configured(redis_server, slack)) as served:
        pass  # /healthz answered 200
    assert served.process.returncode == 0, served.stderr[-2000:]


async def test_check_verifies_every_channel_and_user_group_the_policy_names(tmp_path, redis_server, slack):
    from tests.conftest import policy_file

    slack.add_channel("C0ONCALL", "oncall")
    slack.add_channel("C0SECRET", "secret", is_member=False)
    slack.add_channel("C0OLD", "old", is_archived=True)
    slack.usergroups.update({"S0SRE": ["U0CAROL", "U0DAVE"], "S0EMPTY": []})
    policy = policy_file(
        tmp_path,
        """
rules:
  - name: oncall
    tool: Bash
    channel: C0ONCALL
    approvers: [S0SRE]
  - name: secret
    tool: Write
    channel: C0SECRET
    mention: [S0EMPTY]
  - name: old
    tool: Edit
    channel: C0OLD
    approvers: [U0ALICE, S0GONE]
admins: [S0SRE]
""",
    )
    code, out, _err = await run(
        "check", cwd=tmp_path, **configured(redis_server, slack, APPROVAL_POLICY=str(policy))
    )
    assert code == 1
    assert out.splitlines()[4:] == [
        "ok   channel of oncall: #oncall (C0ONCALL)",
        "FAIL channel of secret: #secret (C0SECRET): the bot is not a member; /invite it",
        "FAIL channel of old: #old (C0OLD): archived; nothing can be posted there",
        "ok   user group of oncall, admins: S0SRE: 2 members",
        "FAIL user group of secret: S0EMPTY: no members",
        "FAIL user group of old: S0GONE: no_such_subteam",
    ]


async def test_check_drained_reports_work_left_under_the_new_and_the_old_names(tmp_path, redis_server, redis):
    from bot.approvals import keys
    from bot.approvals.model import NewRequest
    from bot.approvals.store import RequestStore

    url = {"REDIS_URL": redis_server.url}  # nothing of Slack's is needed
    code, out, _err = await run("check", "--drained", cwd=tmp_path, **url)
    assert (code, out) == (0, "ok   drained: no pending request, no queued job\n")

    store = RequestStore(redis)
    await store.create(NewRequest(id="d" * 24, tool_name="Bash", tool_input={"command": "ls"}))
    await redis.zadd(keys.LEGACY_PENDING, {"an-old-request": 1})  # left by the version before the shards
    code, out, _err = await run("check", "--drained", cwd=tmp_path, **url)
    assert code == 1
    assert out == (
        "FAIL drained: 1 pending request, 1 queued job; under the old names: 1 pending request, 0 queued jobs\n"
    )

    code, out, _err = await run(
        "check", "--drained", cwd=tmp_path, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"
    )
    assert code == 1 and out.startswith("FAIL redis: redis://127.0.0.1")
