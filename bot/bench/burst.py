"""One burst of the phase under Slack's rate limits (``limited``): requests asked at once, each
approved by a signed click as soon as Slack shows it, while later ones still queue behind the limit."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import aiohttp

from ..approvals.model import Decision, State, request_id_for
from ..approvals.queue import queued
from ..approvals.store import RequestStore
from ..redis_client import RedisClient
from .agent import tool_use_id
from .clicks import ClickSigner
from .processes import AgentProcess
from .slack_stub import SlackStub

QUIET = 1.5
"""Seconds without a Slack call before the phase counts the workers as done: longer than the shortest
``Retry-After`` (1 s), so a worker waiting one out is not taken for an idle one."""
CLICK_TIMEOUT = 30.0
AGENT_GRACE = 10.0
POLL = 0.05


class Bursts:
    """Runs bursts against the phase's stand-in, workers and agent process; clicks go to each worker in turn."""

    def __init__(
        self,
        *,
        stub: SlackStub,
        agent: AgentProcess,
        store: RequestStore,
        redis: RedisClient,
        worker_urls: list[str],
        signer: ClickSigner,
        session: aiohttp.ClientSession,
    ) -> None:
        self.stub = stub
        self.agent = agent
        self.store = store
        self.redis = redis
        self.worker_urls = worker_urls
        self.signer = signer
        self.session = session
        self._clicks = 0

    async def run(
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
            if quiet and not ours & self.stub.live and not await queued(self.redis):
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
