"""``python -m bot demo``: the whole product in one process, with a web page for Slack.

One aiohttp app on one port serves a real bot worker (``/slack/events``,
the job worker, the Bolt listeners), the Slack Web API it calls (``/api/``),
and the page people click on (``/``). The agent is the real Agent SDK and
CLI with :class:`~bot.SlackApprover`; only Slack and, without a key, the
model are stand-ins. A :class:`~bot.demo.guard.Guard` in front of it all
keeps other web sites (and, off loopback, other people) out.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from aiohttp import web
from pydantic import SecretStr

from ..agent.approver import SlackApprover
from ..settings import Settings
from ..web import create_app
from . import page, people, scenario, slack_api
from .agent import AgentConsole, DemoAgent
from .guard import Guard, is_wildcard, reachable_host, url_host
from .interactions import Interactions
from .storage import Storage, open_storage
from .workspace import Workspace

AGENT_NAME = "demo-agent"
REQUEST_TIMEOUT = 3600
"""Seconds a playground request waits before it is denied as expired."""
SHUTDOWN_SECONDS = 2.0
"""How long open pages' live streams get to finish when the demo stops."""


@dataclass(frozen=True)
class Demo:
    """A running playground (see :meth:`start`)."""

    url: str
    """Where this machine reaches the server (no trailing slash); the bot's own clients use it."""
    page_url: str
    """The address to open the page at: with the secret in it when the page does not carry it itself."""
    guard: Guard
    bot_token: str
    """The per-start token the bot's client sends to the Slack stand-in."""
    workspace: Workspace
    agent: DemoAgent
    storage: Storage

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        *,
        workdir: Path,
        out: TextIO,
        host: str = "127.0.0.1",
        port: int = 3000,
        redis_url: str | None = None,
        api_key: str | None = None,
        run_agent: bool = True,
        allow_hosts: Sequence[str] = (),
    ) -> AsyncIterator[Demo]:
        """Serve the page on ``host:port`` (0: any free port) and start the agent.

        ``allow_hosts``: further names the page is reached by (see :meth:`Guard.create`).
        Raises ``OSError`` when the port is taken.
        """
        listening = _listen(host, port)
        port = listening.getsockname()[1]
        guard = Guard.create(host, port, allow_hosts)
        url = f"http://{reachable_host(host)}:{port}"
        # A wildcard bind is opened from other machines, by this machine's name.
        shown = url_host(socket.gethostname()) if is_wildcard(host) else reachable_host(host)
        page_url = f"http://{shown}:{port}/" + ("" if guard.token_in_page else f"?token={guard.token}")
        storage = await open_storage(redis_url)
        workspace = Workspace()
        signing_secret = secrets.token_hex(16)
        bot_token = f"xoxb-demo-{secrets.token_urlsafe(24)}"
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            slack_bot_token=SecretStr(bot_token),
            slack_signing_secret=SecretStr(signing_secret),
            slack_api_url=f"{url}/api/",
            approval_channel=people.CHANNEL,
            approval_policy=scenario.POLICY,
        )
        # Its Slack stand-in is served by this same app: the installation is learnt once it serves.
        app = create_app(settings, redis=storage.worker, consumer="demo", slack_first_wait=0)
        interactions = Interactions(workspace, url, signing_secret)
        approver = SlackApprover(
            storage.agent, agent_name=AGENT_NAME, cost_estimator=scenario.gpu_cost, timeout=REQUEST_TIMEOUT
        )
        agent = DemoAgent(approver, AgentConsole(out, workspace.touch), workdir, api_key)
        guard.install(app)
        slack_api.add_routes(app, workspace, bot_token)
        page.add_routes(app, workspace, interactions, agent, guard.token)

        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
        await runner.setup()
        try:
            await web.SockSite(runner, listening).start()
            await approver.start()
            if run_agent:
                agent.start()
            yield cls(url, page_url, guard, bot_token, workspace, agent, storage)
        finally:
            await agent.close()
            await approver.close()
            await storage.agent.aclose()
            await interactions.aclose()
            await runner.cleanup()  # stops the worker, which closes its Redis client


def _listen(host: str, port: int) -> socket.socket:
    """Bind first, so the page's own address is known before the bot is configured with it."""
    host = host.strip("[]")
    listening = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
        # Listen now: the worker's startup calls its Slack stand-in on this very socket (auth.test)
        # before aiohttp serves it; queued in the backlog, that call is answered once serving starts.
        listening.listen()
    except OSError:
        listening.close()
        raise
    return listening
