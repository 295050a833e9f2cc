"""The deadline sweep: timeouts and escalation steps that fell due, each acted on once.

Deadlines are members of a sorted set per shard (``keys.deadlines``), scored by
when they fall due: a bare ``<id>`` is the request's timeout, ``<id>:esc:<n>`` its
n-th escalation step. Any worker may sweep; the store's scripts see that one
acts on each. A step that fires adds its approvers and queues the reminder
that mentions them; a timeout escalates (``on_timeout: escalate``) or
expires the request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..logs import Event, tagged
from . import keys
from .model import Decision, State
from .store import RequestStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deadline:
    """One member of a shard's ``keys.deadlines``, read."""

    request_id: str
    step: int | None = None
    """The escalation step that falls due; None: the request's own timeout."""


def parse(shard: int, member: str) -> Deadline | None:
    """The deadline ``member`` of ``shard``'s set stands for; None when this bot did not write it
    (its request would live in another shard: the scripts could not act on it from this one)."""
    request_id, _, step = member.partition(keys.ESCALATION_MARK)
    if step and not step.isdigit() or keys.shard_of(request_id) != shard:
        return None
    return Deadline(request_id, int(step) if step else None)


async def act_on_due(store: RequestStore, now: float) -> None:
    """Act on every deadline due by ``now``: escalate or expire (any worker may; one acts)."""
    for shard, member in await store.due(now):
        deadline = parse(shard, member)
        if deadline is None:
            # Not written by this bot: it would fail every sweep and hold up the rest.
            log.error("deadline %r is not one of ours; dropped", member)
            await store.drop_due(shard, member)
            continue
        request_id, step = deadline.request_id, deadline.step
        if step is not None:
            if await store.escalate(request_id, step):
                log.info(
                    "request %s escalated (step %s)",
                    request_id,
                    step,
                    extra=tagged(Event.REQUEST_ESCALATED, request_id=request_id, step=step),
                )
            continue
        if await store.time_out(request_id) != "expire":
            continue
        transition = await store.decide(request_id, Decision(State.EXPIRED, reason="timeout"))
        if transition.won:
            log.info(
                "request %s expired",
                request_id,
                extra=tagged(Event.REQUEST_DECIDED, request_id=request_id, state=State.EXPIRED.value),
            )
