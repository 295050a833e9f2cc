"""Concurrent reads and transitions share pipelines; each caller still gets its own answer."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ResponseError

from bot.approvals import keys
from bot.approvals.model import Decision, NewRequest, State, request_id_for


def _new(tool_use_id: str) -> NewRequest:
    return NewRequest(
        id=request_id_for(tool_use_id),
        tool_name="Bash",
        tool_input={"command": tool_use_id},
        tool_use_id=tool_use_id,
        timeout=60,
    )


async def test_a_broken_request_fails_alone_and_the_decisions_batched_with_it_land(store, redis):
    good = [(await store.create(_new(f"toolu_ok{i}")))[0].id for i in range(5)]
    broken = request_id_for("toolu_broken")
    await redis.set(keys.request(broken), "not a hash")  # DECIDE on it fails with WRONGTYPE

    approve = Decision(State.APPROVED, actor="U1", revision=0)
    outcomes = await asyncio.gather(
        *(store.decide(r, approve) for r in [*good[:2], broken, *good[2:]]), return_exceptions=True
    )

    assert isinstance(outcomes[2], ResponseError)
    landed = [o for i, o in enumerate(outcomes) if i != 2]
    assert all(o.won and o.request.state is State.APPROVED for o in landed)
    assert [r.state for r in await store.many(good)] == [State.APPROVED] * 5
    assert await redis.get(keys.request(broken)) == b"not a hash"


async def test_transitions_recover_when_redis_forgot_the_scripts(store, redis):
    created = [(await store.create(_new(f"toolu_f{i}")))[0].id for i in range(20)]
    await redis.script_flush()  # what a restart without persistence of scripts leaves

    outcomes = await asyncio.gather(*(store.decide(r, Decision(State.DENIED, actor="U1")) for r in created))

    assert all(o.won for o in outcomes)
    assert {r.state for r in await store.many(created)} == {State.DENIED}


@pytest.mark.slow
@pytest.mark.parametrize("count", [1, 1200])
async def test_concurrent_reads_each_get_their_own_request(store, count):
    created = [(await store.create(_new(f"toolu_r{i}")))[0] for i in range(count)]

    read = await asyncio.gather(*(store.get(r.id) for r in created), store.get(request_id_for("toolu_none")))

    assert [r.tool_input for r in read[:-1]] == [{"command": f"toolu_r{i}"} for i in range(count)]
    assert read[-1] is None
