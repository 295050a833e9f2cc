"""SlackJobWorker: drains the jobs stream into Slack and sweeps deadlines.

Every ``serve`` process runs one. The consumer group hands each job to one
worker; a job its worker did not finish is re-claimed by another after
``job_retry_after``. All Slack I/O that is not needed to answer a click
happens here, off the 3-second ack path.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import time

import aiohttp
from redis.exceptions import RedisError, ResponseError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from .. import metrics, text
from ..approvals import keys
from ..approvals.allowlist import TeamAllowList
from ..approvals.audit import AuditLog
from ..approvals.model import ApprovalRequest, Decision, Reply, State, is_group
from ..approvals.policy import Action, Policy
from ..approvals.policy_reload import PolicyHolder
from ..approvals.queue import Job, JobKind, JobQueue
from ..approvals.store import RequestStore
from ..logs import Event, about, log_context, tagged
from ..tasks import LoopSupervisor, describe, stop
from .blocks.kit import Message
from .blocks.request_message import request_message
from .budget import Priority, priority
from .directory import Directory
from .errors import described, error_code, logged
from .identity import TrustedOrgs, author_of
from .ids import REQUEST_METADATA_EVENT
from .payloads import is_person_reply

log = logging.getLogger(__name__)

MAX_DELIVERIES = 5
"""A post handed out this many times without success is given up as undeliverable."""

CONSUMER_LOOP = "jobs-consume"
SWEEPER_LOOP = "jobs-sweep"
"""The worker's background loops, as logs and ``/healthz`` name them."""

TAKE_BLOCK_MS = 1000
"""How long one read of the jobs stream waits for a job. The client's read
timeout, longer than this, ends a read on a connection that never answers."""
RELEASE_TIMEOUT = 3.0
"""Seconds a stopping worker spends giving its unfinished jobs back (``JobQueue.release``)."""

POST_CLOCK_SKEW = 60.0
"""Seconds before a post attempt's own clock that its message's ts may carry (hosts' clocks differ)."""
ADOPT_PAGES = 5
"""Pages of channel history searched for a message an earlier attempt posted."""

HOLD_LIMIT = 256
"""Jobs one worker holds at once, running or waiting for a slot or for Slack's budget.
Far above ``concurrency``: a backlog of posts waiting on a channel's rate must not
keep the worker from reading the update of a message somebody just clicked."""

RENDER_LOCK_POLL = 0.05
RENDER_LOCK_POLL_MAX = 2.0
"""Seconds between looks at another worker's render lock: from the first to the longest."""

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

_TRANSIENT_SLACK_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def _is_transient(exc: Exception) -> bool:
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        return status == 429 or status >= 500 or exc.response.get("error") in _TRANSIENT_SLACK_ERRORS
    return isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError, OSError))


def _digest(message: Message) -> str:
    """What a rendering shows, in a few bytes: equal digests, same message."""
    shown = json.dumps([message.text, message.blocks], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(shown.encode()).hexdigest()[:32]


class SlackJobWorker:
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
    ) -> None:
        """``orgs``: whose thread replies reach the model (None: everyone's, as events were checked)."""
        self.store = store
        self.queue = queue
        self.client = client
        # The holder, read at each routing: a reloaded policy applies to the next request.
        self.policies = policy if isinstance(policy, PolicyHolder) else PolicyHolder.fixed(policy)
        self.directory = Directory(store.redis, client)
        self.audit = AuditLog(store.redis)
        self.allowlist = TeamAllowList(store.redis)
        self.default_channel = default_channel
        self.orgs = orgs
        self.sweep_interval = sweep_interval
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._urgent_slots = asyncio.Semaphore(concurrency)
        self._held = asyncio.Semaphore(HOLD_LIMIT)
        self._holding: dict[str, Job] = {}
        self._kept_at = time.monotonic()
        self._running: set[asyncio.Task[None]] = set()
        # Every Redis error is retried, never fatal: READONLY after a failover,
        # NOREPLICAS, MISCONF, LOADING and BUSY all end by themselves or by an
        # operator's hand, and the worker must be there when they do.
        self.loops = LoopSupervisor(expected=(RedisError, OSError))
        self._group_ready = False
        self._bot_user_id: str | None = None

    async def start(self) -> None:
        """Start taking jobs and sweeping deadlines, in the background."""
        self.loops.start(CONSUMER_LOOP, self._consume)
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

    async def _consume(self) -> None:
        """One read of the jobs stream; each job taken runs in its own task."""
        if not self._group_ready:
            # Here, not in start(): a worker started before Redis is up waits
            # for it (and reports 503) instead of crashing.
            await self.queue.ensure_group()
            self._group_ready = True
        try:
            jobs = await self.queue.take(count=self.concurrency, block_ms=TAKE_BLOCK_MS)
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                self._group_ready = False  # Redis lost its data: re-create the group on the next step
            raise
        for job in jobs:
            await self._spawn(job)

    async def _sweep(self) -> None:
        """One sweep: act on due deadlines, take over jobs other workers abandoned."""
        await asyncio.sleep(self.sweep_interval)
        await self.expire_due()
        await self._keep_held()
        for job in await self.queue.reclaim():
            await self._spawn(job)

    async def _keep_held(self) -> None:
        """Jobs waiting here for a slot or Slack's budget are not abandoned: say so
        well before ``job_retry_after``, or another worker would re-claim them."""
        now = time.monotonic()
        if self._holding and now - self._kept_at >= self.queue.retry_after_ms / 3000:
            await self.queue.keep(list(self._holding))
            self._kept_at = now

    async def expire_due(self) -> None:
        """Act on every deadline that fell due: escalate or expire (any worker may; one acts)."""
        for member in await self.store.due(time.time()):
            request_id, _, step = member.partition(keys.ESCALATION_MARK)
            if step and not step.isdigit():
                # Not written by this bot: it would fail every sweep and hold up the rest.
                log.error("deadline %r is not one of ours; dropped", member)
                await self.store.drop_due(member)
                continue
            if step:
                if await self.store.escalate(request_id, int(step)):
                    log.info(
                        "request %s escalated (step %s)",
                        request_id,
                        step,
                        extra=tagged(Event.REQUEST_ESCALATED, request_id=request_id, step=int(step)),
                    )
                continue
            if await self.store.time_out(request_id) != "expire":
                continue
            transition = await self.store.decide(request_id, Decision(State.EXPIRED, reason="timeout"))
            if transition.won:
                log.info(
                    "request %s expired",
                    request_id,
                    extra=tagged(Event.REQUEST_DECIDED, request_id=request_id, state=State.EXPIRED.value),
                )

    async def _spawn(self, job: Job) -> None:
        if job.entry_id in self._holding:
            return  # re-claimed from ourselves: it is still here, waiting
        await self._held.acquire()
        self._holding[job.entry_id] = job
        task = asyncio.create_task(self._slotted(job), name=f"job-{job.kind}-{job.entry_id}")
        self._running.add(task)
        task.add_done_callback(self._finished)

    async def _slotted(self, job: Job) -> None:
        try:
            async with self._urgent_slots if job.kind in URGENT else self._slots:
                with (
                    priority(PRIORITIES.get(job.kind, Priority.POST)),
                    log_context(request_id=job.fields.get("id")),
                ):
                    await self._run(job)
        finally:
            self._holding.pop(job.entry_id, None)
            self._held.release()

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
                await self._post(job)
            case JobKind.UPDATE:
                # Not posted yet: the post job renders the latest state itself.
                request = await self._converge(job.fields["id"], changed=True)
                if request is not None and request.state.is_final:
                    await self._conclude(request)
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
            request = await self._route(request)  # warms the route's approver groups too
            if request is None or request.state.is_final:
                return  # the policy decided it without asking anyone
        else:
            # Before the post: the first click checks membership against this cache.
            await self.directory.warm(a for a in request.approvers if is_group(a))
        channel = request.channel or self.default_channel
        if request.post_started and await self._adopt(request, channel):
            return
        await self.store.start_posting(request_id)
        message = await self._render(request)
        try:
            response = await self.client.chat_postMessage(
                channel=channel,
                text=message.text,
                blocks=message.blocks,
                unfurl_links=False,
                unfurl_media=False,
                metadata={"event_type": REQUEST_METADATA_EVENT, "event_payload": {"request_id": request_id}},
            )
        except Exception as exc:
            if _is_transient(exc) and job.deliveries < MAX_DELIVERIES:
                raise
            reason = error_code(exc) if isinstance(exc, SlackApiError) else type(exc).__name__
            detail = described(exc) if isinstance(exc, SlackApiError) else reason
            extra = (
                logged(exc)
                if isinstance(exc, SlackApiError)
                else tagged(Event.REQUEST_UNDELIVERABLE, error=reason)
            )
            log.error(
                "request %s could not be posted to %s: %s",
                request_id,
                channel,
                detail,
                extra={**extra, **about(request), "channel": channel, "state": State.UNDELIVERABLE.value},
            )
            await self.store.decide(request_id, Decision(State.UNDELIVERABLE, reason=reason))
            return
        try:
            await self._posted(request_id, response["channel"], response["ts"], _digest(message))
        except (RedisError, OSError):
            if not await self._recorded_anyway(request_id, response["channel"], response["ts"]):
                raise

    async def _recorded_anyway(self, request_id: str, channel: str, ts: str) -> bool:
        """Recording the message failed, or only its answer was lost: look again.

        Recorded after all: keep it. Not recorded: take it down, so the retry's
        card is the only live one. Redis still unreadable: keep it; the retry
        finds it by its metadata and adopts it (``_adopt``)."""
        try:
            stored = await self.store.get(request_id)
        except (RedisError, OSError):
            return False
        if stored is not None and stored.ts == ts:
            await self._converge(request_id)
            return True
        with contextlib.suppress(Exception):
            await self.client.chat_delete(channel=channel, ts=ts)
        return False

    async def _posted(self, request_id: str, channel: str, ts: str, shown: str = "") -> None:
        """Record the message (``shown``: the digest of what it shows); a duplicate is
        deleted. Whatever changed while it was being posted (a vote, the end) is shown next."""
        state = await self.store.mark_posted(request_id, channel, ts, shown)
        if state is None:
            # Another worker posted it too (this job was re-claimed while the
            # first worker was still alive): keep one message.
            await self.client.chat_delete(channel=channel, ts=ts)
        else:
            log.info(
                "request %s posted to %s",
                request_id,
                channel,
                extra=tagged(Event.REQUEST_POSTED, request_id=request_id, channel=channel, ts=ts),
            )
            await self.store.adopt_early_replies(request_id, channel, ts)
            await self._converge(request_id)

    async def _adopt(self, request: ApprovalRequest, channel: str) -> bool:
        """An earlier attempt began posting and never recorded the message: if
        Slack has it, record that one instead of posting a second live card.

        Reads the channel's history since the attempt (``conversations.history``
        is Tier 3, and this happens only after a worker died mid-post)."""
        cursor = None
        oldest = f"{request.post_started - POST_CLOCK_SKEW:.6f}"
        try:
            bot_user = await self._bot_user()  # other apps can post metadata too: only ours is adopted
            for _ in range(ADOPT_PAGES):
                page = await self.client.conversations_history(
                    channel=channel, oldest=oldest, include_all_metadata=True, limit=100, cursor=cursor
                )
                for message in page.get("messages", []):
                    metadata = message.get("metadata") or {}
                    payload = metadata.get("event_payload") or {}
                    if (
                        message.get("user") == bot_user
                        and metadata.get("event_type") == REQUEST_METADATA_EVENT
                        and payload.get("request_id") == request.id
                    ):
                        log.warning(
                            "request %s: adopting the message an earlier attempt posted",
                            request.id,
                            extra=tagged(Event.REQUEST_ADOPTED, **about(request), channel=channel),
                        )
                        await self._posted(request.id, channel, str(message["ts"]))
                        return True
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except SlackApiError as exc:
            if _is_transient(exc):
                raise
            log.warning(
                "request %s: history unreadable (%s); posting again",
                request.id,
                described(exc),
                extra=logged(exc, **about(request)),
            )
        return False

    async def _route(self, request: ApprovalRequest) -> ApprovalRequest | None:
        """Apply the policy in one atomic step with its route: allow or deny at
        once without a post, or store who must decide.

        A policy ``deny`` wins over the team allow-list ("Always allow"); a
        team rule approves only where its granter could have approved alone.
        Recomputed on every retry: whichever attempt stores its route first wins."""
        route = self.policies.current.route(
            request.tool_name, request.tool_input, request.cost, resolved=request.resolved
        )
        grants = []
        if route.action is Action.ASK:
            grants = await self.allowlist.grants(request.tool_name, request.tool_input, request.resolved)
            # Before ROUTE, which checks each granter against this route's approver
            # groups, and before the post, whose first click does the same.
            await self.directory.warm(a for a in route.approvers if is_group(a))
        state = await self.store.route(request.id, route, grants)
        log.info(
            "request %s routed by %s: %s",
            request.id,
            route.rule,
            state.value if state is not None else "gone",
            extra=tagged(
                Event.REQUEST_ROUTED,
                **{**about(request), "rule": route.rule},
                action=route.action.value,
                state=state.value if state is not None else None,
            ),
        )
        return await self.store.get(request.id)

    async def _spent(self, request: ApprovalRequest) -> float | None:
        if request.cost is None or not request.rule:
            return None
        return await self.store.spent(request.rule, time.time())

    async def _converge(self, request_id: str, *, changed: bool = False) -> ApprovalRequest | None:
        """Make the request's message show its latest state; returns the request as last read.

        Coalesces: one ``chat.update`` of the latest state stands for every change
        made before it, and a message that already shows it costs no call (the
        common case after a post). One worker at a time updates a message (a
        render lock), so an older state never lands after a newer one. Every
        change queues an update job of its own, and a job that finds the lock
        taken waits for it (``_render_lock``), then renders what is latest then:
        so a change made while another worker was updating is shown too.

        ``changed``: a transition queued this (an update job), so the message is
        almost surely behind: skip the look before taking the lock."""
        if not changed:
            request = await self.store.get(request_id)
            if request is None or not request.posted:
                return request  # the post renders the latest state itself
            if _digest(await self._render(request)) == await self.store.shown(request_id):
                return request
        token = await self._render_lock(request_id)
        if token is None:
            return await self.store.get(request_id)  # not rendered: the request as it stands
        try:
            request = await self.store.get(request_id)  # the latest, now that no one else updates it
            if request is None or not request.posted:
                return request  # the post renders the latest state itself
            message = await self._render(request)
            if _digest(message) != await self.store.shown(request_id) and await self._update(
                request, message
            ):
                await self.store.set_shown(request_id, _digest(message))
                log.info(
                    "request %s: message updated (%s)",
                    request_id,
                    request.state.value,
                    extra=tagged(Event.REQUEST_UPDATED, **about(request), state=request.state.value),
                )
        finally:
            await self.store.unlock_render(request_id, token)
        return request

    async def _render(self, request: ApprovalRequest) -> Message:
        return request_message(request, await self._spent(request))

    async def _render_lock(self, request_id: str) -> str | None:
        """Take the request's render lock, waiting while another worker holds it.

        Waiting usually ends in finding the message current (no call). A holder
        that died leaves the lock until it lapses (``RENDER_LOCK_TTL``): giving up
        at once would leave the message behind for good. None only if it is still
        taken after that."""
        token = secrets.token_hex(8)
        pause = RENDER_LOCK_POLL
        deadline = time.monotonic() + keys.RENDER_LOCK_TTL + RENDER_LOCK_POLL_MAX
        while not await self.store.lock_render(request_id, token):
            if time.monotonic() >= deadline:
                log.error(
                    "request %s: its message's render lock never came free",
                    request_id,
                    extra=tagged(Event.JOB_FAILED, request_id=request_id),
                )
                return None
            await asyncio.sleep(pause)
            pause = min(pause * 2, RENDER_LOCK_POLL_MAX)
        return token

    async def _update(self, request: ApprovalRequest, message: Message | None = None) -> bool:
        """Show ``message`` (the request rendered now, by default) on the request's
        Slack message; False when Slack refuses it for good."""
        if message is None:
            message = await self._render(request)
        try:
            with priority(Priority.PERSON):  # somebody is looking at this message
                await self.client.chat_update(
                    channel=request.posted_channel, ts=request.ts, text=message.text, blocks=message.blocks
                )
        except SlackApiError as exc:
            if _is_transient(exc):
                raise
            log.error(
                "request %s: message could not be updated: %s",
                request.id,
                described(exc),
                extra=logged(exc, **about(request)),
            )
            return False
        return True

    async def _remind(self, job: Job) -> None:
        """An escalation step fired: mention its approvers in the thread, show them on the message."""
        request = await self.store.get(job.fields["id"])
        if request is None or not request.posted or request.state.is_final:
            return
        steps = [int(i) for i in job.fields.get("steps", "").split()]
        added = [t for i in steps if i < len(request.escalation) for t in request.escalation[i]["approvers"]]
        await self.directory.warm(a for a in added if is_group(a))
        await self._converge(request.id)
        reminder = text.message.reminder(
            request, list(dict.fromkeys(added)), time.time() - request.created_at
        )
        await self._in_thread(request, reminder)

    async def _conclude(self, request: ApprovalRequest) -> None:
        """Once per request: the discussion in the audit log and, where people
        talked in the thread, the outcome there too.

        The card itself shows the outcome, so a thread nobody wrote in gets no
        line (each write is a call from Slack's rate limits). The thread is read
        from Slack only when replies were heard (``message`` events) since it was
        last read: usually not at all, at most once per decision."""
        if not await self.store.claim_announcement(request.id):
            return
        try:
            # First: reading is idempotent, the post is not.
            heard, read = await self.store.thread_counts(request.id)
            if heard > read:
                with priority(Priority.AUDIT):
                    replies = await self._gather(request)
            else:
                replies = await self.store.discussion(request.id) if heard else []
            if replies:
                with priority(Priority.REMIND):
                    await self._in_thread(request, text.message.outcome_line(request))
        except Exception:
            await self.store.release_announcement(request.id)
            raise
        metrics.request_ended(request)  # once per request: the claim above holds from here on
        if replies:
            said = [{"user": r.user, "name": r.name, "text": r.text, "ts": r.ts} for r in replies]
            await self.audit.append(
                "discussion",
                actor="system",
                request=request.id,
                input_hash=request.input_hash,
                state=request.state.value,
                replies=json.dumps(said, ensure_ascii=False)[: text.decision.DISCUSSION_AUDIT_LIMIT],
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
                log.warning(
                    "request %s: thread unreadable: %s",
                    request.id,
                    described(exc),
                    extra=logged(exc, **about(request)),
                )
                break
            for message in page.get("messages", []):
                if message.get("ts") == request.ts or not is_person_reply(message, bot_user):
                    continue
                author = author_of(message)
                if self.orgs is not None and (author is None or not self.orgs.allows(author)):
                    continue  # another organisation's reply (Slack Connect), or one that says not whose
                user = message["user"]
                replies.append(
                    Reply(message["ts"], user, await self.directory.name(user), message.get("text", ""))
                )
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        await self.store.add_replies(request.id, replies)
        discussion = await self.store.discussion(request.id)
        await self.store.thread_read(request.id, len(discussion))
        return discussion

    async def _bot_user(self) -> str:
        if self._bot_user_id is None:
            self._bot_user_id = str((await self.client.auth_test()).get("user_id") or "")
        return self._bot_user_id

    async def _in_thread(self, request: ApprovalRequest, message: str) -> None:
        await self.client.chat_postMessage(
            channel=request.posted_channel,
            thread_ts=request.ts,
            text=message,
            unfurl_links=False,
            unfurl_media=False,
        )

    async def _notify(self, job: Job) -> None:
        try:
            await self.client.chat_postEphemeral(
                channel=job.fields["channel"], user=job.fields["user"], text=job.fields["text"]
            )
        except SlackApiError as exc:
            if _is_transient(exc):
                raise
            log.warning(
                "ephemeral to %s failed: %s",
                job.fields["user"],
                described(exc),
                extra=logged(exc, user=job.fields["user"]),
            )
