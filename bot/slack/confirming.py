"""Clicks confirmed on the replicas (``REDIS_WAIT_REPLICAS``): one a failover lost is retried or reported.

A click's decision is written by one script on the request's primary, and Redis
replicates it afterwards. If that primary fails first, its promoted replica
shows the request pending again (and no agent acted on the lost decision: the
agent waits for the same confirmation, ``agent.outcome``). A worker therefore
confirms each decision it recorded; one still unconfirmed is watched in the
background until the failover settles, then recorded again if it was lost (the
same decision, by the same person, at the same revision) or, when that is no
longer possible, the clicker is told. Nothing a person clicked is lost silently.
"""

from __future__ import annotations

import asyncio
import logging
import time

from .. import text
from ..approvals import keys
from ..approvals.model import ApprovalRequest, Decision, State, Transition
from ..approvals.queue import JobQueue
from ..approvals.store import RequestStore
from ..logs import Event, tagged

log = logging.getLogger(__name__)

RECONFIRM_PAUSE = 1.0
"""Seconds between two looks at an unconfirmed decision."""
RECONFIRM_WINDOW = 120.0
"""How long an unconfirmed decision is watched: longer than a cluster's failover
(``cluster-node-timeout`` plus the election) or Sentinel's (``down-after-milliseconds`` plus the election)."""


class ClickConfirmer:
    """Confirms the decisions clicks recorded; watches, retries or reports the rest."""

    def __init__(self, store: RequestStore, queue: JobQueue | None) -> None:
        self.store = store
        self.queue = queue
        self._watching: set[asyncio.Task[None]] = set()

    async def confirm(self, request_id: str, decision: Decision, transition: Transition) -> None:
        """After ``transition`` recorded ``decision`` (won, or counted a vote): confirm it, or
        watch it in the background."""
        if not self.store.replication.replicas or not (transition.won or transition.votes is not None):
            return
        if await self._held(request_id, decision, transition):
            return
        log.warning(
            "request %s: the replicas have not confirmed %s's decision yet; watching it",
            request_id,
            decision.actor,
            extra=tagged(Event.CLICK_UNCONFIRMED, request_id=request_id, user=decision.actor),
        )
        task = asyncio.create_task(
            self._watch(request_id, decision, transition), name=f"confirm-{request_id}"
        )
        self._watching.add(task)
        task.add_done_callback(self._watching.discard)

    async def _held(self, request_id: str, decision: Decision, transition: Transition) -> bool:
        """Whether the replicas hold what ``transition`` recorded: its state, and for a vote, the vote."""
        recorded = transition.request
        held = await self.store.replication.confirmed(request_id)
        if held is None or recorded is None or not _same_request(held, recorded):
            return False
        if transition.votes is not None:
            return held.state is State.PENDING and _has_vote(held, decision.actor, recorded.revision)
        return held.state is recorded.state

    async def _watch(self, request_id: str, decision: Decision, transition: Transition) -> None:
        until = time.monotonic() + RECONFIRM_WINDOW
        original = transition.request
        while time.monotonic() < until and original is not None:
            await asyncio.sleep(RECONFIRM_PAUSE)
            try:
                if await self._held(request_id, decision, transition):
                    log.info("request %s: %s's decision confirmed", request_id, decision.actor)
                    # An agent that gave up confirming it re-reads now, not at its next recheck.
                    await self.store.redis.spublish(keys.decisions(keys.shard_of(request_id)), request_id)
                    return
                now = await self.store.get(request_id)  # failing over: raises, and the next look tells
                if now is None or not _same_request(now, original):
                    # The failover lost the request too (the same id asked anew is another request,
                    # which this person never saw): nothing to record it on.
                    break
                if now.state is not State.PENDING:
                    if transition.request is not None and now.state is transition.request.state:
                        continue  # there, not on the replicas yet: one may be catching up
                    # Another decision stands, made after the failover: this one did not count.
                    await self._tell(request_id, decision, text.refusals.lost_in_failover(now.state))
                    return
                if transition.votes is not None and _has_vote(now, decision.actor, original.revision):
                    continue  # the vote is there, not confirmed yet
                # Pending again without it: the failover lost it. Record it again, as the person clicked it.
                transition = await self.store.decide(request_id, decision)
                if not (transition.won or transition.votes is not None):
                    await self._tell(request_id, decision, text.refusals.lost_in_failover(None))
                    return
                log.info(
                    "request %s: %s's decision, lost in a failover, recorded again",
                    request_id,
                    decision.actor,
                )
            except Exception:
                log.warning(
                    "request %s: confirming a decision failed; trying again", request_id, exc_info=True
                )
        await self._tell(request_id, decision, text.refusals.lost_in_failover(None))

    async def _tell(self, request_id: str, decision: Decision, message: str) -> None:
        log.warning(
            "request %s: %s's decision was lost in a Redis failover; told them",
            request_id,
            decision.actor,
            extra=tagged(Event.CLICK_LOST, request_id=request_id, user=decision.actor),
        )
        request = await self.store.get(request_id)
        if self.queue is None or request is None or not request.posted_channel:
            return
        await self.queue.notify(request.posted_channel, decision.actor, message, team=request.team)


def _same_request(now: ApprovalRequest, clicked: ApprovalRequest) -> bool:
    """Whether ``now`` is the request the person clicked, not another one asked later under the
    same id (a replayed call after a failover lost the first): same creation, same call."""
    return now.created_at == clicked.created_at and now.call_hash == clicked.call_hash


def _has_vote(request: ApprovalRequest, user: str, revision: int) -> bool:
    """Whether ``user``'s vote on ``revision`` of the input is counted: a vote on another revision
    (an earlier one, which a Modify lost in the failover had cleared) is not the one clicked."""
    return request.revision == revision and user in {vote.user for vote in request.votes}
