"""SlackJobWorker: drains the jobs streams into Slack and sweeps deadlines.

Every ``serve`` process runs one, and it covers every shard (``keys.SHARDS``):
one blocking reader per shard's stream, one sweep over all the shards'
deadlines and abandoned jobs. The consumer group of each stream hands each job
to one worker; a job its worker did not finish is re-claimed by another after
``job_retry_after``. All Slack I/O that is not needed to answer a click
happens here, off the 3-second ack path.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time

from redis.exceptions import RedisError, ResponseError
from slack_sdk.web.async_client import AsyncWebClient

from .. import metrics
from ..approvals import deadlines, keys
from ..approvals.allowlist import TeamAllowList
from ..approvals.model import Decision, State
from ..approvals.policy import Policy
from ..approvals.policy_reload import PolicyHolder
from ..approvals.queue import Job, JobKind, JobQueue
from ..approvals.routing import Router
from ..approvals.store import RequestStore
from ..logs import Event, log_context, tagged
from ..tasks import LoopSupervisor, describe, stop
from .budget import Priority, priority
from .directory import Directory
from .identity import TrustedOrgs
from .messages import RequestMessages
from .posting import RequestPoster
from .retries import MAX_DELIVERIES
from .threads import RequestThreads
from .workspaces import Workspaces, acting_for

log = logging.getLogger(__name__)

CONSUMER_LOOP = "jobs-consume"
SWEEPER_LOOP = "jobs-sweep"
"""The worker's background loops, as logs and ``/healthz`` name them: a consumer per shard
(``consumer_loop``), one sweeper."""


def consumer_loop(shard: int) -> str:
    """The name of the loop reading ``shard``'s jobs stream."""
    return f"{CONSUMER_LOOP}:{shard}"


TAKE_BLOCK_MS = 1000
"""How long one read of a shard's jobs stream waits for a job. The client's read
timeout, longer than this, ends a read on a connection that never answers."""
RELEASE_TIMEOUT = 3.0
"""Seconds a stopping worker spends giving its unfinished jobs back (``JobQueue.release``)."""

HOLD_LIMIT = 256
"""Jobs one worker holds at once, running or waiting for a slot or for Slack's budget.
Far above ``concurrency``: a backlog of posts waiting on a channel's rate must not
keep the worker from reading the update of a message somebody just clicked."""

PRIORITIES: dict[str, Priority] = {
    JobKind.UPDATE: Priority.PERSON,
    JobKind.NOTIFY: Priority.PERSON,
    JobKind.POST: Priority.POST,
    JobKind.REMIND: Priority.REMIND,
    JobKind.GATHER: Priority.REMIND,
}
"""What each job's Slack calls draw on the shared budget at (``slack.budget``)."""
URGENT = frozenset({JobKind.UPDATE, JobKind.NOTIFY})
"""Jobs a person waits on: they have slots of their own, never queued behind posts."""


class SlackJobWorker:
    """Takes jobs from the stream and does their Slack side; sweeps the deadlines.

    What to do is decided in ``approvals`` (routing, the deadline sweep); this
    posts, updates and writes in threads what that decided."""

    def __init__(
        self,
        store: RequestStore,
        queue: JobQueue,
        client: AsyncWebClient,
        *,
        policy: Policy | PolicyHolder,
        default_channel: str,
        sweep_interval: float,
        concurrency: int = 16,
        orgs: TrustedOrgs | None = None,
        workspaces: Workspaces | None = None,
    ) -> None:
        """``orgs``: whose thread replies reach the model (None: everyone's, as events were checked)."""
        self.store = store
        self.queue = queue
        self.client = client
        policies = policy if isinstance(policy, PolicyHolder) else PolicyHolder.fixed(policy)
        self.directory = Directory(store.redis, client)
        self.messages = RequestMessages(store, client)
        self.poster = RequestPoster(
            store,
            client,
            router=Router(
                store, policies, TeamAllowList(store.redis), workspaces.policies if workspaces else None
            ),
            directory=self.directory,
            messages=self.messages,
            default_channel=default_channel,
            channels=workspaces.channels if workspaces else {},
        )
        self.workspaces = workspaces
        """OAuth mode: each job runs ``acting_for`` its request's workspace (or its notice's)."""
        self.threads = RequestThreads(
            store, client, directory=self.directory, messages=self.messages, orgs=orgs, workspaces=workspaces
        )
        self.sweep_interval = sweep_interval
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._urgent_slots = asyncio.Semaphore(concurrency)
        self._held = asyncio.Semaphore(HOLD_LIMIT)
        self._room = asyncio.Event()
        """Set while this worker holds fewer than ``HOLD_LIMIT`` jobs: the readers read only then."""
        self._room.set()
        self._holding: dict[tuple[int, str], Job] = {}
        self._kept_at = time.monotonic()
        self._running: set[asyncio.Task[None]] = set()
        # Every Redis error is retried, never fatal: READONLY after a failover,
        # NOREPLICAS, MISCONF, LOADING and BUSY all end by themselves or by an
        # operator's hand, and the worker must be there when they do.
        self.loops = LoopSupervisor(expected=(RedisError, OSError))
        self._groups_ready: set[int] = set()

    async def start(self) -> None:
        """Start taking jobs and sweeping deadlines, in the background."""
        for shard in keys.ALL_SHARDS:
            self.loops.start(consumer_loop(shard), functools.partial(self._consume, shard))
        self.loops.start(SWEEPER_LOOP, self._sweep)

    async def close(self, grace: float = 0.0) -> None:
        """Stop taking jobs; let the running ones finish for up to ``grace`` seconds; give the
        rest back to the stream, where another worker takes them at once."""
        await self.loops.close()
        if self._running and grace > 0:
            await asyncio.wait(set(self._running), timeout=grace)
        unfinished = list(self._holding)
        await stop(self._running)
        if unfinished:
            try:
                async with asyncio.timeout(RELEASE_TIMEOUT):
                    released = await self.queue.release(unfinished)
                log.info("gave %d unfinished jobs back to the other workers", released)
            except (RedisError, OSError, TimeoutError) as exc:
                # Not lost: another worker re-claims them after job_retry_after.
                log.warning(
                    "could not give %d unfinished jobs back (%s); others take them later",
                    len(unfinished),
                    describe(exc),
                )

    def health(self) -> dict[str, dict[str, object]]:
        """The background loops that cannot do their work right now (empty when all can)."""
        return self.loops.problems()

    # -- loops ---------------------------------------------------------------

    async def _consume(self, shard: int) -> None:
        """One read of ``shard``'s jobs stream; each job taken runs in its own task."""
        if shard not in self._groups_ready:
            # Here, not in start(): a worker started before Redis is up waits
            # for it (and reports 503) instead of crashing.
            await self.queue.ensure_group(shard)
            self._groups_ready.add(shard)
        # Read no more than this worker can hold: the rest stays on the stream for the other workers.
        await self._room.wait()
        count = min(self.concurrency, HOLD_LIMIT - len(self._holding))
        try:
            jobs = await self.queue.take(shard, count=max(1, count), block_ms=TAKE_BLOCK_MS)
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                self._groups_ready.discard(shard)  # Redis lost its data: re-create the group next step
            raise
        for job in jobs:
            await self._spawn(job)

    async def _sweep(self) -> None:
        """One sweep: act on due deadlines, take over jobs other workers abandoned, in every shard."""
        await asyncio.sleep(self.sweep_interval)
        await deadlines.act_on_due(self.store, time.time())
        await self._keep_held()
        for shard in keys.ALL_SHARDS:
            for job in await self.queue.reclaim(shard):
                await self._spawn(job)

    async def _keep_held(self) -> None:
        """Jobs waiting here for a slot or Slack's budget are not abandoned: say so
        well before ``job_retry_after``, or another worker would re-claim them."""
        now = time.monotonic()
        if self._holding and now - self._kept_at >= self.queue.retry_after_ms / 3000:
            await self.queue.keep(list(self._holding))
            self._kept_at = now

    async def _spawn(self, job: Job) -> None:
        if job.key in self._holding:
            return  # re-claimed from ourselves: it is still here, waiting
        await self._held.acquire()
        self._holding[job.key] = job
        if len(self._holding) >= HOLD_LIMIT:
            self._room.clear()
        task = asyncio.create_task(self._slotted(job), name=f"job-{job.kind}-{job.shard}-{job.entry_id}")
        self._running.add(task)
        task.add_done_callback(self._finished)

    async def _slotted(self, job: Job) -> None:
        try:
            async with self._urgent_slots if job.kind in URGENT else self._slots:
                with (
                    priority(PRIORITIES.get(job.kind, Priority.POST)),
                    log_context(request_id=job.fields.get("id")),
                    acting_for(await self._workspace(job)),
                ):
                    await self._run(job)
        finally:
            self._holding.pop(job.key, None)
            self._held.release()
            self._room.set()

    async def _workspace(self, job: Job) -> str:
        if self.workspaces is None:
            return ""
        request_id = job.fields.get("id")
        return await self.workspaces.team_of(request_id) if request_id else job.fields.get("team", "")

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # _run catches every Exception: this is a BaseException. Said here,
            # or asyncio would only say it when the task is collected.
            log.error("%s ended abnormally", task.get_name(), exc_info=task.exception())

    async def _run(self, job: Job) -> None:
        try:
            await self.handle(job)
            await self.queue.done(job)
        except Exception:
            if job.deliveries < MAX_DELIVERIES:
                # Not acknowledged: a worker re-claims it after job_retry_after.
                log.exception(
                    "job %s (%s) failed; it will be retried",
                    job.entry_id,
                    job.kind,
                    extra=tagged(Event.JOB_FAILED, job=job.kind, deliveries=job.deliveries),
                )
                metrics.job_retried(job.kind)
                return
            log.exception(
                "job %s (%s) failed %d times; dropped",
                job.entry_id,
                job.kind,
                job.deliveries,
                extra=tagged(Event.JOB_DROPPED, job=job.kind, deliveries=job.deliveries),
            )
            metrics.job_dead(job.kind)
            await self._drop(job)

    async def _drop(self, job: Job) -> None:
        """Give a job up for good: tell the agent no if it was a post, and take it off the stream."""
        request_id = job.fields.get("id")
        if job.kind == JobKind.POST and request_id:
            try:
                # Nobody will ever see it: tell the agent no now, rather than at its deadline (or never).
                await self.store.decide(
                    request_id, Decision(State.UNDELIVERABLE, reason="the worker kept failing")
                )
            except Exception:
                log.exception(
                    "request %s could not be marked undeliverable; its deadline will end it", request_id
                )
        try:
            await self.queue.done(job)
        except Exception:
            # Still on the stream: the next re-claim drops it again.
            log.exception("job %s could not be removed from the stream", job.entry_id)

    # -- jobs ----------------------------------------------------------------

    async def handle(self, job: Job) -> None:
        """Do one job. Raises only when retrying later could help."""
        match job.kind:
            case JobKind.POST:
                await self.poster.post(job.fields["id"], may_retry=job.deliveries < MAX_DELIVERIES)
            case JobKind.UPDATE:
                # Not posted yet: the post job renders the latest state itself.
                request = await self.messages.converge(job.fields["id"], changed=True)
                if request is not None and request.state.is_final:
                    await self.threads.conclude(request)
            case JobKind.REMIND:
                await self.threads.remind(job.fields["id"], job.fields.get("steps", ""))
            case JobKind.GATHER:
                request = await self.store.get(job.fields["id"])
                if request is not None and request.posted:
                    await self.threads.gather(request)
            case JobKind.NOTIFY:
                await self.threads.notify(job.fields["channel"], job.fields["user"], job.fields["text"])
            case _:
                log.error("job %s: unknown kind %r dropped", job.entry_id, job.kind)
