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
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from redis.asyncio import Redis

from ..approvals import keys
from ..approvals.model import Decision, State, request_id_for
from ..approvals.store import RequestStore
from ..redis_client import CLI_CLIENT_NAME, connect
from ..settings import Settings
from ..slack.rates import POSTS_PER_WORKSPACE
from . import report
from .agent import tool_use_id
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
QUIET = 1.5
"""Seconds without a Slack call before the phase counts the workers as done: longer than the shortest
``Retry-After`` (1 s), so a worker waiting one out is not taken for an idle one."""
CLICK_TIMEOUT = 30.0
AGENT_GRACE = 10.0
POLL = 0.05


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
        self.signer = ClickSigner(secret)
        self.secret = secret
        self.session = session
        self.limits = SlackLimits(scale)
        self.stub = SlackStub(self.limits)
        self.children: list[Child] = []
        self.worker_urls: list[str] = []
        self.server_info: dict[str, Any] = {}
        self.redis: Redis
        self.store: RequestStore
        self.agent: AgentProcess
        self._clicks = 0

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
        run = await self._burst("lw", asks, post_deadline=WARM_UP_TIMEOUT, settle_deadline=WARM_UP_TIMEOUT)
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
        run = await self._burst(
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

    # -- one burst -------------------------------------------------------------------

    async def _burst(
        self, prefix: str, asks: list[tuple[str, str, int]], *, post_deadline: float, settle_deadline: float
    ) -> dict[str, Any]:
        """Ask every request of ``asks`` at once, click each as soon as it is posted, wait for the workers
        to finish. Posting may take ``post_deadline`` seconds, the agent and the workers ``settle_deadline``
        more after the last click; what timed out is listed, not raised."""
        batches = {f"{prefix}{i}": count for i, (_agent, _channel, count) in enumerate(asks)}
        ids = [request_id_for(tool_use_id(b, n)) for b, count in batches.items() for n in range(count)]
        ours = set(ids)
        timed_out: list[str] = []
        acks_backlog: list[float] = []
        acks_after: list[float] = []
        errors: list[str] = []
        clicks: set[asyncio.Task[None]] = set()
        posts = self.stub.watch_posts()

        def click(request_id: str) -> None:
            backlog = not ours.issubset(self.stub.posted.keys())  # some are still queued behind the limit
            task = asyncio.create_task(
                self._click(request_id, acks_backlog if backlog else acks_after, errors)
            )
            clicks.add(task)

        async def click_as_posted() -> None:
            seen = 0
            while seen < len(ours):
                request_id = await posts.get()
                if request_id in ours:
                    seen += 1
                    click(request_id)

        start = time.monotonic()
        clicker = asyncio.create_task(click_as_posted())
        try:
            for (agent, channel, _count), (batch, count) in zip(asks, batches.items(), strict=True):
                self.agent.send(
                    {
                        "op": "ask",
                        "batch": batch,
                        "count": count,
                        "rate": 0,
                        "agent": agent,
                        "channel": channel,
                    }
                )
            try:
                await self.stub.wait_posted(ids, post_deadline)
                last_post = max(self.stub.posted[r] for r in ids)
            except TimeoutError:
                timed_out.append(f"posting ({post_deadline:.0f} s)")
                last_post = time.monotonic()  # all posted later than this, if ever
            posted = [r for r in ids if r in self.stub.posted]
            await asyncio.sleep(0)  # the clicker takes the posts already queued
        finally:
            clicker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await clicker
            self.stub.unwatch_posts(posts)
        while not posts.empty():  # posted just before the clicker stopped
            if (request_id := posts.get_nowait()) in ours:
                click(request_id)
        await asyncio.gather(*clicks)
        clicked = time.monotonic()

        never_posted = [r for r in ids if r not in self.stub.posted]
        for request_id in never_posted:  # end its wait: nobody can click what Slack never showed
            await self.store.decide(request_id, Decision(State.CANCELLED, reason="bench: never posted"))
        settle_until = clicked + settle_deadline
        for batch in batches:
            left = max(0.1, settle_until - time.monotonic())
            try:
                async with asyncio.timeout(left + AGENT_GRACE):  # the agent's own timeout answers first
                    await self.agent.ask({"op": "collect", "batch": batch, "timeout": left})
            except RuntimeError as exc:  # some calls still waiting when the agent's timeout ended
                timed_out.append(f"agent {batch}: {exc}")
            except TimeoutError:
                timed_out.append(f"agent {batch}: no answer")
                break  # a late answer would be taken for the next batch's
        if await self._settled(ours, settle_until):
            settled = self.stub.last_call  # the workers' last Slack call
        else:
            timed_out.append(f"workers' Slack calls ({settle_deadline:.0f} s after the last click)")
            settled = time.monotonic()
        states = [r.state if r else None for r in await asyncio.gather(*(self.store.get(i) for i in ids))]
        undeliverable = {i for i, s in zip(ids, states, strict=True) if s is State.UNDELIVERABLE}
        return {
            "posted": len(posted),
            "posted_by_the_end": len(ours & self.stub.posted.keys()),
            "posted_s": last_post - start,
            "acks_backlog": acks_backlog,
            "acks_after": acks_after,
            "click_errors": len(errors),
            "approved": sum(1 for s in states if s is State.APPROVED),
            "never_posted": len(never_posted),
            "undeliverable": len(undeliverable),
            "lost": len(undeliverable | set(never_posted)),
            "live": len(ours & self.stub.live),
            "done_after_clicks_s": max(0.0, settled - clicked),
            "phase_s": settled - start,
            "timed_out": timed_out + [f"click: {e}" for e in errors[:3]],
        }

    async def _settled(self, ours: set[str], until: float) -> bool:
        """Until no message of ``ours`` offers a decision, no job is left and Slack has been quiet ``QUIET`` s
        (polled: the workers' progress is spread over Redis and Slack). False if ``until`` comes first."""
        while time.monotonic() < until:
            quiet = time.monotonic() - self.stub.last_call >= QUIET
            if quiet and not ours & self.stub.live and not await self.redis.xlen(keys.JOBS):
                return True
            await asyncio.sleep(POLL)
        return False

    async def _click(self, request_id: str, acks: list[float], errors: list[str]) -> None:
        """Approve ``request_id`` on the next worker; ``acks`` gets the seconds until the worker answered."""
        url = self.worker_urls[self._clicks % len(self.worker_urls)]
        self._clicks += 1
        body, headers = self.signer.approve(request_id, self.stub.channel_of[request_id])
        sent = time.monotonic()
        try:
            async with self.session.post(
                f"{url}/slack/events",
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=CLICK_TIMEOUT),
            ) as response:
                await response.read()
                if response.status != 200:
                    errors.append(f"{request_id}: HTTP {response.status}")
                    return
        except (aiohttp.ClientError, TimeoutError) as exc:
            errors.append(f"{request_id}: {type(exc).__name__}")
            return
        acks.append(time.monotonic() - sent)
