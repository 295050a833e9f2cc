"""The phase under Slack's rate limits: a burst of requests into a few channels, approved while they post.

In a real workspace Slack's rate limits, not our CPU, bound throughput
(DESIGN.md §3). This phase runs against a stand-in that enforces them
(``slack_limits``), sped up ``slack_rate_scale`` times, with a world of its
own: a fresh ``redis-server`` (so no state of earlier phases, the workers'
shared rate budget included, carries over), its own ``python -m bot serve``
workers and its own agent process, in which several ``SlackApprover``s, each
posting to one of the channels, ask at once. Every request is approved by a
signed click as soon as Slack shows it, so clicks arrive while later requests
are still queued behind the limit. It measures:

- how long until every request is posted, against the least time the limits
  allow for the per-channel split (``minimum_post_seconds``);
- the 429s Slack (the stand-in) answered;
- Slack writes per decision: ``chat.postMessage``, ``chat.update``,
  ``chat.postEphemeral`` and ``chat.delete`` calls Slack accepted, less one post
  per request posted, divided by the decisions;
- click-ack latency while the backlog lasts (the HTTP response to the click);
- requests lost: never posted, or ended undeliverable.

The workers get the factor as ``SLACK_RATE_SCALE`` (their shared budget paces
to the same sped-up rates) and ``JOB_RETRY_AFTER`` divided by it, so a job
that fails waits the same share of the phase as it would at Slack's own pace.
Slack's ``Retry-After`` stays in whole seconds, as Slack sends it: at a scale
of 6 a 429 costs a worker that honours it up to six times what it would in a
real workspace. Every wait is bounded; a phase that runs out of time reports
what it got, with ``timed_out`` saying where.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from ..approvals.store import RequestStore
from ..redis_client import CLI_CLIENT_NAME, RedisClient, connect
from ..settings import Settings
from ..slack.rates import POSTS_PER_WORKSPACE
from . import report
from .burst import Bursts
from .clicks import ClickSigner
from .processes import AgentProcess, Child, start_redis, start_worker
from .slack_limits import SlackLimits, minimum_post_seconds
from .slack_stub import SlackStub

WRITES = ("chat.postMessage", "chat.update", "chat.postEphemeral", "chat.delete")
"""The Slack calls that change what people see; the ones counted per decision."""
TIMEOUT_FACTOR = 10.0
"""Each wait ends at this multiple of the least time the limits allow (or ``MIN_WAIT``, if longer)."""
MIN_WAIT = 20.0
WARM_UP_TIMEOUT = 60.0


def channels(count: int) -> list[str]:
    """The phase's channel ids (Slack ids: ``C`` and upper-case letters or digits)."""
    return [f"C0BENCHLIMIT{i}" for i in range(count)]


def plan(requests: int, agents: int, channel_ids: list[str]) -> list[tuple[str, str, int]]:
    """(agent name, channel, requests it asks): the requests shared out, agent ``i`` posting to channel ``i mod n``."""
    share, extra = divmod(requests, agents)
    return [
        (f"bench-agent-{i}", channel_ids[i % len(channel_ids)], share + (i < extra)) for i in range(agents)
    ]


class LimitedPhase:
    """One run of the phase; ``run()`` starts its processes, measures, and stops them whatever happens."""

    def __init__(
        self,
        *,
        requests: int,
        channel_count: int,
        agents: int,
        workers: int,
        scale: float,
        workdir: Path,
        secret: str,
        session: aiohttp.ClientSession,
    ) -> None:
        self.requests = requests
        self.channels = channels(channel_count)
        self.agents = agents
        self.workers = workers
        self.scale = scale
        self.workdir = workdir
        self.secret = secret
        self.session = session
        self.limits = SlackLimits(scale)
        self.stub = SlackStub(self.limits)
        self.children: list[Child] = []
        self.worker_urls: list[str] = []
        self.server_info: dict[str, Any] = {}
        self.redis: RedisClient
        self.store: RequestStore
        self.agent: AgentProcess
        self.bursts: Bursts

    async def run(self) -> dict[str, Any]:
        self.workdir.mkdir(parents=True, exist_ok=True)
        async with contextlib.AsyncExitStack() as cleanup:  # undone in reverse, whatever happened
            cleanup.push_async_callback(self.stub.close)
            cleanup.push_async_callback(
                self._stop_children
            )  # before the stub: workers may call Slack as they stop
            redis_child, redis_url = await start_redis(self.workdir)  # its own dir: its own append-only file
            self.children.append(redis_child)
            await self.stub.start()
            self.redis = connect(redis_url, name=CLI_CLIENT_NAME, max_connections=16)
            cleanup.push_async_callback(self.redis.aclose)
            self.store = RequestStore(self.redis)
            cleanup.push_async_callback(self.store.aclose)
            self.server_info = await self.redis.info("server")
            retry_after = Settings.model_fields["job_retry_after"].default / self.scale
            for i in range(self.workers):
                child, url = await start_worker(
                    f"limited-worker-{i + 1}",
                    self.workdir,
                    {
                        "REDIS_URL": redis_url,
                        "SLACK_BOT_TOKEN": "xoxb-bench",
                        "SLACK_SIGNING_SECRET": self.secret,
                        "SLACK_API_URL": self.stub.url,
                        "APPROVAL_CHANNEL": self.channels[0],
                        "SLACK_RATE_SCALE": repr(self.scale),
                        "JOB_RETRY_AFTER": repr(retry_after),
                    },
                )
                self.children.append(child)
                self.worker_urls.append(url)
            self.agent = await AgentProcess.start(self.workdir, redis_url)
            self.children.append(self.agent)
            self.bursts = Bursts(
                stub=self.stub,
                agent=self.agent,
                store=self.store,
                redis=self.redis,
                worker_urls=self.worker_urls,
                signer=ClickSigner(self.secret),
                session=self.session,
            )
            await self._warm_up()
            figures = await self._measure()
        return figures

    async def _stop_children(self) -> None:
        for child in reversed(self.children):
            await child.stop()

    async def _warm_up(self) -> None:
        """A request from each agent, clicked on each worker in turn: first-use costs (connections,
        subscriptions, imports, Bolt's ``auth.test``) are not the phase's. Then every bucket full again."""
        each = math.ceil(self.workers / self.agents)
        asks = [
            (agent, channel, each) for agent, channel, _count in plan(self.agents, self.agents, self.channels)
        ]
        run = await self.bursts.run(
            "lw", asks, post_deadline=WARM_UP_TIMEOUT, settle_deadline=WARM_UP_TIMEOUT
        )
        if run["timed_out"]:
            raise RuntimeError(f"warm-up under Slack's limits did not finish: {', '.join(run['timed_out'])}")
        # The workers' own budget (if any) refills as the stand-in's does: wait until both are full.
        used = set(self.stub.answered) | set(self.stub.limited) | {POSTS_PER_WORKSPACE}
        refill = max(self.limits.rate(m).burst / self.limits.rate(m).per_second for m in used)
        await asyncio.sleep(refill)
        self.stub.reset_counts()

    async def _measure(self) -> dict[str, Any]:
        asks = plan(self.requests, self.agents, self.channels)
        per_channel: Counter[str] = Counter()
        for _agent, channel, count in asks:
            per_channel[channel] += count
        minimum = minimum_post_seconds(per_channel, self.scale)
        # The least time the decisions' message updates take (chat.update, Tier 3) bounds the workers' last wait.
        updates = self.limits.rate("chat.update").minimum_seconds(self.requests)
        run = await self.bursts.run(
            "lm",
            asks,
            post_deadline=max(MIN_WAIT, TIMEOUT_FACTOR * minimum),
            settle_deadline=max(MIN_WAIT, TIMEOUT_FACTOR * updates),
        )
        answered, limited = dict(self.stub.answered), dict(self.stub.limited)
        writes = sum(answered.get(m, 0) for m in WRITES) - run["posted_by_the_end"]
        decisions = run["approved"]
        return {
            "requests": self.requests,
            "channels": len(self.channels),
            "agents": self.agents,
            "workers": self.workers,
            "rate_scale": self.scale,
            "posted": run["posted"],
            "minimum_s": round(minimum, 3),
            "posted_s": round(run["posted_s"], 3),
            "x_minimum": round(run["posted_s"] / minimum, 2) if minimum else math.nan,
            "ratelimited": sum(limited.values()),
            "ratelimited_by_method": limited,
            "calls_by_method": answered,
            "decisions": decisions,
            "writes": writes,
            "writes_per_decision": round(writes / decisions, 2) if decisions else math.nan,
            "click_ack_backlog": report.latency(run["acks_backlog"]),
            "click_ack_after": report.latency(run["acks_after"]),
            "click_errors": run["click_errors"],
            "never_posted": run["never_posted"],
            "undeliverable": run["undeliverable"],
            "lost": run["lost"],
            "live_after_decision": run["live"],
            "done_after_clicks_s": round(run["done_after_clicks_s"], 3),
            "phase_s": round(run["phase_s"], 3),
            "timed_out": run["timed_out"],
        }
