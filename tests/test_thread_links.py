"""A thread's root and the replies heard before it was linked (``ThreadStore``): both keys carry
the thread's own tag, so each step is one MULTI in one slot, on one primary or on a cluster."""

from __future__ import annotations

import asyncio

from bot.approvals import keys
from bot.approvals.model import Reply, request_id_for
from bot.approvals.store import RequestStore

ROOT = ("C1", "1700000000.000100")


def reply(n: int) -> Reply:
    return Reply(f"1700000001.{n:06d}", "U0ALICE", "alice", f"reply {n}")


def test_a_threads_keys_share_a_slot_of_their_own():
    from redis.crc import key_slot

    root, early = keys.thread_root(*ROOT), keys.early_replies(*ROOT)
    assert key_slot(root.encode()) == key_slot(early.encode())
    assert root != early and "{t:C1:1700000000.000100}" in root


async def test_a_reply_held_before_the_link_is_adopted_once(redis_or_cluster):
    store, request_id = RequestStore(redis_or_cluster), request_id_for("toolu_1")
    assert await store.hold_early_reply(*ROOT, reply(1)) is None
    assert await store.request_for_thread(*ROOT) is None

    await store.link_thread(request_id, *ROOT)
    assert await store.request_for_thread(*ROOT) == request_id
    assert await store.discussion(request_id) == [reply(1)]
    assert await redis_or_cluster.exists(keys.early_replies(*ROOT)) == 0

    await store.link_thread(request_id, *ROOT)  # a retry links again: nothing doubles
    assert await store.discussion(request_id) == [reply(1)]
    # Once linked, a reply held late names the request, whose listener adds it.
    assert await store.hold_early_reply(*ROOT, reply(2)) == request_id


async def test_a_thread_no_request_claims_holds_its_first_replies_only(redis_or_cluster):
    store = RequestStore(redis_or_cluster)
    for n in range(keys.EARLY_REPLIES_MAX + 5):
        assert await store.hold_early_reply(*ROOT, reply(n)) is None
    assert await redis_or_cluster.hlen(keys.early_replies(*ROOT)) == keys.EARLY_REPLIES_MAX
    assert 0 < await redis_or_cluster.ttl(keys.early_replies(*ROOT)) <= keys.EARLY_REPLIES_TTL
    await store.link_thread(request_id_for("toolu_1"), *ROOT)
    held = await store.discussion(request_id_for("toolu_1"))
    assert held == [reply(n) for n in range(keys.EARLY_REPLIES_MAX)]


async def test_replies_racing_the_link_all_reach_the_request(redis_or_cluster):
    store, request_id = RequestStore(redis_or_cluster), request_id_for("toolu_1")

    async def heard(n: int) -> None:
        # What the events listener does with a reply to a thread it finds no root for.
        await asyncio.sleep(0.001 * (n % 7))
        claimed = await store.hold_early_reply(*ROOT, reply(n))
        if claimed is not None:
            await store.add_replies(claimed, [reply(n)])

    async def link() -> None:
        await asyncio.sleep(0.003)
        await store.link_thread(request_id, *ROOT)

    await asyncio.wait_for(asyncio.gather(link(), *(heard(n) for n in range(40))), 10)
    assert await store.discussion(request_id) == [reply(n) for n in range(40)]
