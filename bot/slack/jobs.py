"""SlackJobWorker: drains the jobs stream into Slack and sweeps deadlines.

Every ``serve`` process runs one. The consumer group hands each job to one
worker; a job its worker did not finish is re-claimed by another after
``job_retry_after``. All Slack I/O that is not needed to answer a click
happens here, off the 3-second ack path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

import aiohttp
from redis.exceptions import RedisError, ResponseError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from .. import text
from ..approvals import keys
from ..approvals.allowlist import TeamAllowList
from ..approvals.audit import AuditLog
from ..approvals.model import POLICY_ACTOR, ApprovalRequest, Decision, Reply, State
from ..approvals.policy import Action, Policy, is_group
from ..approvals.queue import Job, JobKind, JobQueue
from ..approvals.store import RequestStore
from ..tasks import stop
from . import blocks
from .directory import Directory
from .payloads import is_person_reply

log = logging.getLogger(__name__)

MAX_DELIVERIES = 5
"""A post handed out this many times without success is given up as undeliverable."""

_TRANSIENT_SLACK_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def _is_transient(exc: Exception) -> bool:
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        return status == 429 or status >= 500 or exc.response.get("error") in _TRANSIENT_SLACK_ERRORS
    return isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError, OSError))


def _slack_error(exc: SlackApiError) -> str:
    return str(exc.response.get("error") or f"HTTP {exc.response.status_code}")


class SlackJobWorker:
    def __init__(
        self,
        store: RequestStore,
        queue: JobQueue,
        client: AsyncWebClient,
        *,
        policy: Policy,
        default_channel: str,
        sweep_interval: float,
        concurrency: int = 16,
    ) -> None:
        self.store = store
        self.queue = queue
        self.client = client
        self.policy = policy
        self.directory = Directory(store.redis, client)
        self.audit = AuditLog(store.redis)
        self.allowlist = TeamAllowList(store.redis)
        self.default_channel = default_channel
        self.sweep_interval = sweep_interval
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._running: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = False
        self._bot_user_id: str | None = None

    async def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._consume(), name="jobs-consume"),
            asyncio.create_task(self._sweep(), name="jobs-sweep"),
        ]

    async def close(self) -> None:
        self._stopping = True  # the loops also end on this, should a cancel be lost
        await stop([*self._loops, *self._running])
        self._loops = []

    # -- loops ---------------------------------------------------------------

    async def _consume(self) -> None:
        backoff = 0.1
        group_ready = False
        while not self._stopping:
            try:
                if not group_ready:
                    # Here, not in start(): a worker started before Redis is
                    # up waits for it (and reports 503) instead of crashing.
                    await self.queue.ensure_group()
                    group_ready = True
                jobs = await self.queue.take(count=self.concurrency, block_ms=1000)
                backoff = 0.1
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                log.warning("jobs: consumer group missing (Redis lost its data?); re-creating it")
                group_ready = False
                continue
            except (RedisError, OSError) as exc:
                log.warning("jobs: Redis unavailable (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            for job in jobs:
                await self._spawn(job)

    async def _sweep(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.sweep_interval)
            try:
                await self.expire_due()
                for job in await self.queue.reclaim():
                    await self._spawn(job)
            except (RedisError, OSError) as exc:
                log.warning("sweep: Redis unavailable (%s)", exc)

    async def expire_due(self) -> None:
        """Act on every deadline that fell due: escalate or expire (any worker may; one acts)."""
        for member in await self.store.due(time.time()):
            request_id, _, step = member.partition(keys.ESCALATION_MARK)
            if step:
                if await self.store.escalate(request_id, int(step)):
                    log.info("request %s escalated (step %s)", request_id, step)
                continue
            if await self.store.time_out(request_id) != "expire":
                continue
            transition = await self.store.decide(request_id, Decision(State.EXPIRED, reason="timeout"))
            if transition.won:
                log.info("request %s expired", request_id)

    async def _spawn(self, job: Job) -> None:
        await self._slots.acquire()
        task = asyncio.create_task(self._run(job))
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._slots.release()

    async def _run(self, job: Job) -> None:
        try:
            await self.handle(job)
            await self.queue.done(job)
        except Exception:
            if job.deliveries < MAX_DELIVERIES:
                # Not acknowledged: a worker re-claims it after job_retry_after.
                log.exception("job %s (%s) failed; it will be retried", job.entry_id, job.kind)
                return
            log.exception("job %s (%s) failed %d times; dropped", job.entry_id, job.kind, job.deliveries)
            with contextlib.suppress(RedisError, OSError):
                if job.kind == JobKind.POST:
                    # Nobody will ever see it: tell the agent no now, rather than at its deadline (or never).
                    await self.store.decide(job.fields["id"], Decision(State.UNDELIVERABLE, reason="the worker kept failing"))
                await self.queue.done(job)

    # -- jobs ----------------------------------------------------------------

    async def handle(self, job: Job) -> None:
        """Do one job. Raises only when retrying later could help."""
        match job.kind:
            case JobKind.POST:
                await self._post(job)
            case JobKind.UPDATE:
                request = await self.store.get(job.fields["id"])
                if request is not None and request.posted:
                    await self._update(request)
                    if request.state.is_final:
                        await self._conclude(request)
                # Not posted yet: the post job renders the latest state itself.
            case JobKind.REMIND:
                await self._remind(job)
            case JobKind.GATHER:
                request = await self.store.get(job.fields["id"])
                if request is not None and request.posted:
                    await self._gather(request)
            case JobKind.NOTIFY:
                await self._notify(job)
            case _:
                log.error("job %s: unknown kind %r dropped", job.entry_id, job.kind)

    async def _post(self, job: Job) -> None:
        request_id = job.fields["id"]
        request = await self.store.get(request_id)
        if request is None or request.posted or request.state.is_final:
            return  # gone, done by another worker, or ended before anyone saw it
        if not request.routed:
            request = await self._route(request)
            if request is None or request.state.is_final:
                return  # the policy decided it without asking anyone
        # Before the post: the first click checks membership against this cache.
        await self.directory.warm(a for a in request.approvers if is_group(a))
        channel = request.channel or self.default_channel
        message = blocks.request_message(request, await self._spent(request))
        try:
            response = await self.client.chat_postMessage(
                channel=channel, text=message.text, blocks=message.blocks, unfurl_links=False, unfurl_media=False
            )
        except Exception as exc:
            if _is_transient(exc) and job.deliveries < MAX_DELIVERIES:
                raise
            reason = _slack_error(exc) if isinstance(exc, SlackApiError) else type(exc).__name__
            log.error("request %s could not be posted to %s: %s", request_id, channel, reason)
            await self.store.decide(request_id, Decision(State.UNDELIVERABLE, reason=reason))
            return
        posted_channel, ts = response["channel"], response["ts"]
        state = await self.store.mark_posted(request_id, posted_channel, ts)
        if state is None:
            # Another worker posted it too (this job was re-claimed while the
            # first worker was still alive): keep one message.
            await self.client.chat_delete(channel=posted_channel, ts=ts)
        elif state.is_final:
            ended = await self.store.get(request_id)  # it ended while we were posting
            if ended is not None:
                await self._update(ended)

    async def _route(self, request: ApprovalRequest) -> ApprovalRequest | None:
        """Apply the policy: store the route, or allow/deny at once without a post.

        A policy ``deny`` wins over the team allow-list ("Always allow"); the
        allow-list wins over asking."""
        route = self.policy.route(request.tool_name, request.tool_input, request.cost)
        await self.store.route(request.id, route)
        team_rule = None
        if route.action is not Action.DENY:
            team_rule = await self.allowlist.matching(request.tool_name, request.tool_input)
        if team_rule is not None:
            outcome = (State.APPROVED, f"team allow-list {team_rule.rule}", "auto_allowed")
        elif route.action is Action.ALLOW:
            outcome = (State.APPROVED, f"rule {route.rule}", "auto_allowed")
        elif route.action is Action.DENY:
            outcome = (State.DENIED, route.message, "auto_denied")
        else:
            return await self.store.get(request.id)  # ask: with the route just stored
        state, reason, event = outcome
        decision = Decision(state, actor=POLICY_ACTOR, reason=reason, event=event)
        return (await self.store.decide(request.id, decision)).request

    async def _spent(self, request: ApprovalRequest) -> float | None:
        if request.cost is None or not request.rule:
            return None
        return await self.store.spent(request.rule, time.time())

    async def _update(self, request: ApprovalRequest) -> None:
        message = blocks.request_message(request, await self._spent(request))
        try:
            await self.client.chat_update(
                channel=request.posted_channel, ts=request.ts, text=message.text, blocks=message.blocks
            )
        except SlackApiError as exc:
            if _is_transient(exc):
                raise
            log.error("request %s: message could not be updated: %s", request.id, _slack_error(exc))

    async def _remind(self, job: Job) -> None:
        """An escalation step fired: mention its approvers in the thread, show them on the message."""
        request = await self.store.get(job.fields["id"])
        if request is None or not request.posted or request.state.is_final:
            return
        steps = [int(i) for i in job.fields.get("steps", "").split()]
        added = [t for i in steps if i < len(request.escalation) for t in request.escalation[i]["approvers"]]
        await self.directory.warm(a for a in added if is_group(a))
        await self._update(request)
        reminder = text.reminder(request, list(dict.fromkeys(added)), time.time() - request.created_at)
        await self._in_thread(request, reminder)

    async def _conclude(self, request: ApprovalRequest) -> None:
        """Once per request: the outcome in the thread, the discussion in the audit log."""
        if not await self.store.claim_announcement(request.id):
            return
        try:
            replies = await self._gather(request)  # first: it is idempotent, the post is not
            await self._in_thread(request, text.outcome_line(request))
        except Exception:
            await self.store.release_announcement(request.id)
            raise
        if replies:
            said = [{"user": r.user, "name": r.name, "text": r.text, "ts": r.ts} for r in replies]
            await self.audit.append(
                "discussion", actor="system", request=request.id, input_hash=request.input_hash,
                state=request.state.value, replies=json.dumps(said, ensure_ascii=False)[: text.DISCUSSION_AUDIT_LIMIT],
            )

    async def _gather(self, request: ApprovalRequest) -> list[Reply]:
        """Read the thread from Slack (``conversations.replies``) and keep the people's replies."""
        bot_user = await self._bot_user()
        replies: list[Reply] = []
        cursor = None
        while True:
            try:
                page = await self.client.conversations_replies(
                    channel=request.posted_channel, ts=request.ts, cursor=cursor, limit=200
                )
            except SlackApiError as exc:
                if _is_transient(exc):
                    raise
                log.warning("request %s: thread unreadable: %s", request.id, _slack_error(exc))
                break
            for message in page.get("messages", []):
                if message.get("ts") == request.ts or not is_person_reply(message, bot_user):
                    continue
                user = message["user"]
                replies.append(Reply(message["ts"], user, await self.directory.name(user), message.get("text", "")))
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        await self.store.add_replies(request.id, replies)
        return await self.store.discussion(request.id)

    async def _bot_user(self) -> str:
        if self._bot_user_id is None:
            self._bot_user_id = str((await self.client.auth_test()).get("user_id") or "")
        return self._bot_user_id

    async def _in_thread(self, request: ApprovalRequest, message: str) -> None:
        await self.client.chat_postMessage(
            channel=request.posted_channel, thread_ts=request.ts, text=message, unfurl_links=False, unfurl_media=False
        )

    async def _notify(self, job: Job) -> None:
        try:
            await self.client.chat_postEphemeral(
                channel=job.fields["channel"], user=job.fields["user"], text=job.fields["text"]
            )
        except SlackApiError as exc:
            if _is_transient(exc):
                raise
            log.warning("ephemeral to %s failed: %s", job.fields["user"], _slack_error(exc))
