"""The benchmark's phases, in one run: floors, latencies, concurrent waits, worker throughput,
and a burst under Slack's rate limits (``limited``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiohttp

from ..approvals.model import Decision, State, request_id_for
from ..approvals.queue import queued
from ..approvals.store import RequestStore
from ..redis_client import AGENT_CLIENT_NAME, CLI_CLIENT_NAME, RedisClient, connect
from . import floor, report, scaling
from .agent import tool_use_id
from .clicks import APPROVER, Clicks, ClickSigner
from .cluster import start_cluster
from .limited import LimitedPhase
from .processes import AgentProcess, Child, start_floor_server, start_redis, start_worker
from .sizes import Sizes
from .slack_stub import SlackStub

CHANNEL = "C0BENCHAPPROVALS"
WARM_UP = 100
"""Decisions made before any measurement: first-use costs (connections, imports, Bolt's auth.test) are not the path's."""
DRAIN_TIMEOUT = 300.0
UNLIMITED_RATE_SCALE = 1e6
"""``SLACK_RATE_SCALE`` of the workers of the phases without rate limits: their stand-in answers every
call at once, so a worker that paces itself to Slack's rates must not slow them down."""


Progress = Callable[[str], None]
StartRedis = Callable[[Path], Awaitable[tuple[list[Child], str]]]
"""Starts the Redis of a deployment in a directory: its processes and the ``REDIS_URL`` of the parts."""
CLUSTER_PRIMARIES = 3


async def _one_primary(workdir: Path) -> tuple[list[Child], str]:
    child, url = await start_redis(workdir)
    return [child], url


class Bench:
    """One run: ``run()`` starts the processes, measures each phase on an idle system, stops everything."""

    def __init__(
        self,
        sizes: Sizes,
        workdir: Path,
        progress: Progress,
        *,
        only_limited: bool = False,
        cluster_replicas: int | None = None,
    ) -> None:
        self.sizes = sizes
        self.only_limited = only_limited
        self.cluster_replicas = cluster_replicas
        self.workdir = workdir
        self.home = workdir
        """The directory of the deployment running now (its Redis files, the logs of its parts)."""
        self.progress = progress
        self.secret = secrets.token_hex(16)
        self.signer = ClickSigner(self.secret)
        self.stub = SlackStub()
        self.children: list[Child] = []
        self.worker_urls: list[str] = []
        self.redis_url = ""
        self.session: aiohttp.ClientSession
        self.clicks: Clicks
        self.store: RequestStore
        self.agent: AgentProcess

    async def run(self) -> dict[str, Any]:
        if self.only_limited:
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.sizes.concurrency)
            ) as session:
                self.session = session
                phase = self._limited_phase()
                figures = await phase.run()
            results: dict[str, Any] = {
                "machine": report.machine(phase.server_info),
                "sizes": asdict(self.sizes),
                "slack_limits": figures,
            }
            results["targets"] = [t.as_dict() for t in report.targets(results)]
            return results
        if self.cluster_replicas is not None:
            return await self._compare_topologies(self.cluster_replicas)
        await self.stub.start()
        try:
            async with self._deployment(_one_primary, self.workdir) as redis:
                return await self._measure(redis)
        finally:
            await self.stub.close()

    @contextlib.asynccontextmanager
    async def _deployment(self, start: StartRedis, home: Path) -> AsyncIterator[RedisClient]:
        """Redis (by ``start``), one worker and the agent, in ``home``; stops what it started on exit."""
        began = len(self.children)
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        try:
            nodes, self.redis_url = await start(home)
            self.children += nodes
            redis = connect(self.redis_url, name=CLI_CLIENT_NAME, max_connections=64)
            try:
                # Closed before the workers stop: a kept-alive connection would hold up their shutdown.
                async with aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=self.sizes.concurrency)
                ) as session:
                    self.session = session
                    self.clicks = Clicks(session, self.signer, CHANNEL, self.sizes.concurrency)
                    self.store = RequestStore(redis)
                    await self._add_worker()
                    self.agent = await AgentProcess.start(home, self.redis_url)
                    self.children.append(self.agent)
                    yield redis
            finally:
                await redis.aclose()
        finally:
            for child in reversed(self.children[began:]):
                await child.stop()
            del self.children[began:]
            self.worker_urls.clear()

    async def _compare_topologies(self, replicas: int) -> dict[str, Any]:
        """Click → wake and decisions/s with 1, 2 and 4 workers on one primary, then on a cluster."""

        async def cluster(home: Path) -> tuple[list[Child], str]:
            return await start_cluster(home, CLUSTER_PRIMARIES, replicas)

        runs: dict[str, dict[int, dict[str, Any]]] = {}
        server: dict[str, Any] = {}
        await self.stub.start()
        try:
            for topology, start in (("single", _one_primary), ("cluster", cluster)):
                self.progress(f"{topology}: starting Redis, a worker and the agent")
                async with self._deployment(start, self.workdir / topology) as redis:
                    if not server:
                        server = await redis.info("server")
                    runs[topology] = await self._by_workers(redis, topology)
        finally:
            await self.stub.close()
        compared = scaling.compare(runs)
        compared["setup"] = {
            "primaries": CLUSTER_PRIMARIES,
            "replicas": replicas,
            "cpus": os.cpu_count(),
            "load_average": [round(load, 2) for load in os.getloadavg()],
            "order": "single primary first, then the cluster",
        }
        results: dict[str, Any] = {
            "machine": report.machine(server),
            "sizes": asdict(self.sizes),
            "cluster": compared,
        }
        results["targets"] = [
            t.as_dict() for t in report.targets(results)
        ]  # the are not for this run
        return results

    async def _by_workers(self, redis: RedisClient, topology: str) -> dict[int, dict[str, Any]]:
        """The same phases as the default run, with each worker count of ``scaling.WORKER_COUNTS``."""
        figures: dict[int, dict[str, Any]] = {}
        for workers in scaling.WORKER_COUNTS:
            while len(self.worker_urls) < workers:
                await self._add_worker()
            urls = self.worker_urls[:workers]
            batch = f"{topology}{workers}"
            self.progress(f"{topology}, {workers} worker(s): warm-up")
            await self._throughput(f"{batch}warm", urls, count=WARM_UP)
            await self._drain(redis)
            wake: dict[str, Any] = {}
            for kind, rate in (("steady", self.sizes.rate), ("burst", 0.0)):
                self.progress(
                    f"{topology}, {workers} worker(s), {kind}: {self.sizes.decisions} asks and clicks"
                )
                _asked, clicked = await self._latencies(f"{batch}{kind}", rate, urls)
                await self._drain(redis)
                wake[kind] = report.latency(clicked)
            self.progress(f"{topology}, {workers} worker(s): throughput, {self.sizes.throughput} clicks")
            meter = scaling.CpuMeter({c.pid: scaling.role_of(c.name) for c in self.children})
            throughput = await self._throughput(f"{batch}tp", urls, cpu=meter)
            await self._drain(redis)
            figures[workers] = {"click_to_wake": wake, "throughput": throughput}
        return figures

    async def _measure(self, redis: RedisClient) -> dict[str, Any]:
        floors = await self._floors(redis)
        self.progress("warm-up")
        await self._throughput("warmup", self.worker_urls, count=WARM_UP)
        await self._drain(redis)
        click_floor = report.added(floors["post"], floors["publish"])
        results: dict[str, Any] = {
            "machine": report.machine(await redis.info("server")),
            "sizes": asdict(self.sizes),
            "floors": floors,
            "click_to_wake": {},
            "ask_to_post": {},
            "throughput": {},
        }
        for kind, rate in (("steady", self.sizes.rate), ("burst", 0.0)):
            self.progress(f"{kind}: {self.sizes.decisions} asks and clicks")
            asked, clicked = await self._latencies(kind, rate)
            await self._drain(redis)
            results["ask_to_post"][kind] = report.latency(asked, click_floor)
            results["click_to_wake"][kind] = report.latency(clicked, click_floor)
        self.progress(f"{self.sizes.waits} concurrent waits")
        results["concurrent_waits"] = await self._concurrent_waits(redis, floors["bulk_publish_s"])
        await self._drain(redis)
        for workers, name in ((1, "one_worker"), (2, "two_workers")):
            while len(self.worker_urls) < workers:
                await self._add_worker()
            self.progress(f"throughput with {workers} worker(s): {self.sizes.throughput} clicks")
            run = await self._throughput(f"tp{workers}", self.worker_urls[:workers])
            await self._drain(redis)
            run["x_floor"] = round(run["decisions_per_s"] / floors["post_per_s"], 3)
            results["throughput"][name] = run
        results["slack_limits"] = await self._limited_phase().run()
        results["targets"] = [t.as_dict() for t in report.targets(results)]
        return results

    # -- phases ------------------------------------------------------------------

    def _limited_phase(self) -> LimitedPhase:
        sizes = self.sizes
        self.progress(
            f"under Slack's rate limits ×{sizes.slack_rate_scale:g}: {sizes.limited_requests} requests "
            f"into {sizes.limited_channels} channels from {sizes.limited_agents} agents, "
            f"{sizes.limited_workers} worker(s)"
        )
        return LimitedPhase(
            requests=sizes.limited_requests,
            channel_count=sizes.limited_channels,
            agents=sizes.limited_agents,
            workers=sizes.limited_workers,
            scale=sizes.slack_rate_scale,
            workdir=self.workdir / "limited",
            secret=self.secret,
            session=self.session,
        )

    async def _floors(self, redis: RedisClient) -> dict[str, Any]:
        self.progress("floors")
        server, url = await start_floor_server(self.home)
        self.children.append(server)
        body, _headers = self.signer.approve(request_id_for("toolu_floor"), CHANNEL)  # a click's size
        subscriber = connect(self.redis_url, name=CLI_CLIENT_NAME, max_connections=2)  # the agent's kind
        try:
            publish = await floor.publish_round_trips(redis, subscriber, self.sizes.floor_samples)
            bulk = await floor.bulk_publish(redis, subscriber, self.sizes.waits)
        finally:
            await subscriber.aclose()
        post = await floor.post_round_trips(self.session, url, body, self.sizes.floor_samples)
        rate = await floor.post_rate(self.session, url, body, self.sizes.throughput, self.sizes.concurrency)
        await server.stop()
        self.children.remove(server)
        return {
            "publish": report.latency(publish),
            "post": report.latency(post),
            "post_per_s": round(rate, 1),
            "bulk_publish_s": round(bulk, 4),
        }

    async def _latencies(
        self, batch: str, rate: float, urls: list[str] | None = None
    ) -> tuple[list[float], list[float]]:
        """ask → post and click → wake samples: asks at ``rate`` (0: all at once), then clicks likewise,
        spread over ``urls`` (default: the first worker)."""
        count = self.sizes.decisions
        calls = [tool_use_id(batch, i) for i in range(count)]
        requests = [request_id_for(c) for c in calls]
        self.agent.send({"op": "ask", "batch": batch, "count": count, "rate": rate})
        await self.stub.wait_posted(requests, self._deadline(count))
        clicked = await self.clicks.approve_all(requests, urls or self.worker_urls[:1], rate)
        outcomes = await self._collect(batch, count)
        asked = [self.stub.posted[r] - outcomes[c][0] for c, r in zip(calls, requests, strict=True)]
        woken = [outcomes[c][1] - clicked[r] for c, r in zip(calls, requests, strict=True)]
        return asked, woken

    async def _concurrent_waits(self, redis: RedisClient, floor_s: float) -> dict[str, Any]:
        count = self.sizes.waits
        before = await self.agent.ask({"op": "memory"})
        self.agent.send({"op": "ask", "batch": "waits", "count": count, "rate": 0})
        requests = [request_id_for(tool_use_id("waits", i)) for i in range(count)]
        start = time.monotonic()
        await self.stub.wait_posted(requests, self._deadline(count))
        posted_s = time.monotonic() - start
        during = await self.agent.ask({"op": "memory"})
        if during["waiting"] != count:
            raise RuntimeError(f"expected {count} waits in the agent, found {during['waiting']}")
        clients = await redis.client_list()
        connections = sum(1 for c in clients if c.get("name") == AGENT_CLIENT_NAME)
        approve = Decision(State.APPROVED, actor=APPROVER, actor_name="bench", revision=0)
        start = time.monotonic()
        await asyncio.gather(*(self.store.decide(r, approve) for r in requests))
        decided = time.monotonic()
        outcomes = await self._collect("waits", count)
        last = max(returned for _called, returned, _allowed in outcomes.values())
        return {
            "waits": count,
            "posted_s": round(posted_s, 3),
            "rss_before_mb": round(before["rss"] / 2**20, 1),
            "rss_waiting_mb": round(during["rss"] / 2**20, 1),
            "kb_per_wait": round((during["rss"] - before["rss"]) / count / 1024, 2),
            "redis_connections": connections,
            "decide_s": round(decided - start, 3),
            "all_woken_s": round(last - start, 3),
            "woken_after_last_decision_s": round(max(0.0, last - decided), 3),
            "x_floor": round((last - start) / floor_s, 1),
        }

    async def _throughput(
        self, batch: str, urls: list[str], count: int | None = None, cpu: scaling.CpuMeter | None = None
    ) -> dict[str, Any]:
        """Decisions a second ``urls``' workers make, from the first click to the last message update
        (``cpu``, if given, measures that span too)."""
        count = count or self.sizes.throughput
        requests = [request_id_for(tool_use_id(batch, i)) for i in range(count)]
        self.agent.send({"op": "ask", "batch": batch, "count": count, "rate": 0})
        await self.stub.wait_posted(requests, self._deadline(count))
        if cpu:
            cpu.start()
        start = time.monotonic()
        clicked = await self.clicks.approve_all(requests, urls, 0.0, acked=True)
        acked = max(clicked.values())
        await self.stub.wait_updated(requests, self._deadline(count))
        used = cpu.stop() if cpu else None
        updated = max(self.stub.updated[r] for r in requests)
        await self._collect(batch, count)
        figures: dict[str, Any] = {
            "workers": len(urls),
            "decisions": count,
            "decisions_per_s": round(count / (updated - start), 1),
            "acks_per_s": round(count / (acked - start), 1),
        }
        if used:
            figures["cpu"] = used
        return figures

    # -- helpers -----------------------------------------------------------------

    async def _drain(self, redis: RedisClient) -> None:
        """Until the workers have finished every job (Slack updates, thread replies) a phase left behind,
        so each phase starts on an idle system."""
        until = time.monotonic() + DRAIN_TIMEOUT
        while await queued(redis):
            if time.monotonic() > until:
                raise RuntimeError(f"the workers did not finish their jobs within {DRAIN_TIMEOUT:.0f}s")
            await asyncio.sleep(0.05)

    async def _add_worker(self) -> None:
        name = f"worker-{len(self.worker_urls) + 1}"
        child, url = await start_worker(
            name,
            self.home,
            {
                "REDIS_URL": self.redis_url,
                "SLACK_BOT_TOKEN": "xoxb-bench",
                "SLACK_SIGNING_SECRET": self.secret,
                "SLACK_API_URL": self.stub.url,
                "APPROVAL_CHANNEL": CHANNEL,
                "SLACK_RATE_SCALE": repr(UNLIMITED_RATE_SCALE),
            },
        )
        self.children.append(child)
        self.worker_urls.append(url)

    async def _collect(self, batch: str, count: int) -> dict[str, list[Any]]:
        """The agent's calls of ``batch``; RuntimeError unless every one was allowed."""
        calls = (await self.agent.ask({"op": "collect", "batch": batch, "timeout": self._deadline(count)}))[
            "calls"
        ]
        refused = [c for c, (_called, _returned, allowed) in calls.items() if not allowed]
        if refused:
            raise RuntimeError(f"{len(refused)} approved calls were not allowed, e.g. {refused[0]}")
        return calls

    @staticmethod
    def _deadline(count: int) -> float:
        return 30 + count / 50  # generous: a slow machine must finish, not time out


async def run(
    sizes: Sizes,
    progress: Progress = lambda _line: None,
    workdir: Path | None = None,
    *,
    only_limited: bool = False,
    cluster_replicas: int | None = None,
) -> dict[str, Any]:
    """Run every phase (or, ``only_limited``, only the one under Slack's rate limits; or, with
    ``cluster_replicas`` set, the comparison of one primary with a cluster having that many replicas per
    primary); the results as a JSON-ready dict (``report.table`` prints it)."""
    if workdir is not None:
        return await Bench(
            sizes, workdir, progress, only_limited=only_limited, cluster_replicas=cluster_replicas
        ).run()
    with tempfile.TemporaryDirectory(prefix="bot-bench-") as tmp:
        return await Bench(
            sizes, Path(tmp), progress, only_limited=only_limited, cluster_replicas=cluster_replicas
        ).run()
