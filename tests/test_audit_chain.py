"""The audit chains: removing entries anywhere in one, the oldest included, fails verification.

Most tests work on one shard's chain, shard 0, which holds the entries that name no request
too: their requests are picked to land there (``in_shard``). The last ones check that each
shard's chain verifies, trims and fails on its own.

Entries are written through the product's own paths (``RequestStore``, ``AuditLog.append``)
on a real Redis; the attacks are what someone with write access to that Redis can do.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.approvals import keys
from bot.approvals.audit import AuditLog, entry_hash
from bot.approvals.model import Decision, NewRequest, State, request_id_for
from bot.approvals.names import AuditEvent
from tests.test_cli import run

CAP = 6
"""A tiny cap on the stream, so a few transitions make the product trim it."""
SHARD = keys.AUDIT_SHARD_DEFAULT
"""The shard whose chain the tests write: the one ``AuditLog.append`` uses without a request."""
CHAIN = keys.audit(SHARD)


def in_shard(tool_use_id: str, shard: int = SHARD) -> str:
    """``tool_use_id`` with a suffix that puts its request in ``shard``."""
    n = 0
    while keys.shard_of(request_id_for(f"{tool_use_id}_{n}")) != shard:
        n += 1
    return f"{tool_use_id}_{n}"


async def decided(store, count: int, tag: str = "chain", shard: int = SHARD) -> None:
    """``count`` requests of ``shard`` created and then approved or denied: two entries each."""
    for i in range(count):
        tool_use_id = in_shard(f"toolu_{tag}{i}", shard)
        new = NewRequest(
            id=request_id_for(tool_use_id),
            tool_name="Bash",
            tool_input={"command": f"make {tag}{i}"},
            tool_use_id=tool_use_id,
        )
        await store.create(new)
        state = State.APPROVED if i % 2 == 0 else State.DENIED
        decision = Decision(state, actor="U0ALICE", actor_name="alice", reason=f"r{i}", revision=0)
        outcome = await store.decide(new.id, decision)
        assert outcome.won


async def stream(redis, chain: keys.AuditKeys = CHAIN) -> list[tuple[str, dict[str, str]]]:
    """Every entry of a chain as stored: (id, fields), oldest first."""
    return [
        (i.decode(), {k.decode(): v.decode() for k, v in f.items()})
        for i, f in await redis.xrange(chain.stream)
    ]


async def rewrite(redis, entries: list[tuple[str, dict[str, str]]]) -> str:
    """Replace the stream with ``entries``, every hash recomputed as the bot computes it.

    What anyone who can write to Redis can do; returns the new head.
    """
    await redis.delete(CHAIN.stream)
    prev = ""
    for entry_id, fields in entries:
        own = {k: v for k, v in fields.items() if k not in ("prev", "hash")}
        digest = entry_hash(prev, [(k.encode(), v.encode()) for k, v in own.items()])
        await redis.xadd(CHAIN.stream, {**own, "prev": prev, "hash": digest}, id=entry_id)
        prev = digest
    await redis.set(CHAIN.head, prev)
    return prev


def events(entries: list[tuple[str, dict[str, str]]]) -> list[str]:
    return [fields["event"] for _id, fields in entries]


async def test_the_chain_starts_with_one_genesis_entry_and_verifies(store, redis):
    await decided(store, 2)
    await AuditLog(redis).append("rule_added", actor="U0ALICE", rule="Bash(make *)")
    await decided(store, 1, tag="more")

    entries = await stream(redis)
    assert events(entries) == [
        AuditEvent.GENESIS,
        "created",
        "approved",
        "created",
        "denied",
        "rule_added",
        "created",
        "approved",
    ]
    assert entries[0][1]["prev"] == "" and entries[0][1]["actor"] == "system"
    verdict = await AuditLog(redis).verify(SHARD)
    assert verdict.ok, verdict.problem
    assert verdict.checked == len(entries) and verdict.head == entries[-1][1]["hash"] and verdict.trim is None


@pytest.mark.parametrize("removed", [1, 2, 3])
async def test_deleting_the_oldest_entries_fails_verification(store, redis, removed):
    await decided(store, 3)
    ids = [entry_id for entry_id, _ in await stream(redis)]

    await redis.xdel(CHAIN.stream, *ids[:removed])

    verdict = await AuditLog(redis).verify(SHARD)
    assert not verdict.ok
    assert "the oldest entries were removed" in verdict.problem


async def test_deleting_an_entry_in_the_middle_fails_verification(store, redis):
    await decided(store, 3)
    entries = await stream(redis)
    denied = next(entry_id for entry_id, fields in entries if fields["event"] == "denied")

    await redis.xdel(CHAIN.stream, denied)

    verdict = await AuditLog(redis).verify(SHARD)
    assert not verdict.ok and "the entry before it was removed or changed" in verdict.problem


async def test_deleting_the_newest_entries_and_resetting_the_head_fails_against_a_saved_head(store, redis):
    log = AuditLog(redis)
    await decided(store, 3)
    saved = (await log.verify(SHARD)).head
    entries = await stream(redis)

    await redis.xdel(CHAIN.stream, *[entry_id for entry_id, _ in entries[-2:]])
    verdict = await log.verify(SHARD)
    assert not verdict.ok and "the newest entries were removed" in verdict.problem

    # Pointing the head at the new end hides that from Redis alone ...
    await redis.set(CHAIN.head, entries[-3][1]["hash"])
    assert (await log.verify(SHARD)).ok
    # ... but not from a head kept elsewhere.
    verdict = await log.verify(SHARD, expect=saved)
    assert not verdict.ok and f"the saved hash {saved} is not in the chain" in verdict.problem


async def test_an_entry_added_after_the_head_fails_verification(store, redis):
    await decided(store, 2)
    entries = await stream(redis)
    head = entries[-1][1]["hash"]
    own = {"event": "approved", "request": "", "actor": "U0MALLORY", "at": "1"}
    forged = {
        **own,
        "prev": head,
        "hash": entry_hash(head, [(k.encode(), v.encode()) for k, v in own.items()]),
    }

    await redis.xadd(CHAIN.stream, forged)  # linked, but the head was left alone

    verdict = await AuditLog(redis).verify(SHARD)
    assert not verdict.ok and "entries were added after the chain's head" in verdict.problem


async def test_a_saved_head_still_matches_after_the_chain_grew(store, redis):
    log = AuditLog(redis)
    await decided(store, 2)
    saved = (await log.verify(SHARD)).head
    saved_id = (await stream(redis))[-1][0]

    await decided(store, 2, tag="later")

    verdict = await log.verify(SHARD, expect=saved)
    assert verdict.ok, verdict.problem
    assert verdict.expected == saved_id and verdict.head != saved
    assert (await log.verify(SHARD, expect=verdict.head)).ok


async def test_a_rewritten_chain_passes_alone_but_not_against_a_saved_head(store, redis):
    log = AuditLog(redis)
    await decided(store, 3)
    saved = (await log.verify(SHARD)).head
    entries = await stream(redis)

    # The denial is dropped and every later hash recomputed, from the same genesis.
    await rewrite(redis, [(i, f) for i, f in entries if f["event"] != "denied"])
    assert (await log.verify(SHARD)).ok
    verdict = await log.verify(SHARD, expect=saved)
    assert not verdict.ok and "is not in the chain" in verdict.problem

    # Or the whole log is replaced by a fresh one: anchor, head and all.
    await redis.delete(CHAIN.stream, CHAIN.head, CHAIN.anchor)
    await decided(store, 1, tag="fresh")
    assert events(await stream(redis))[0] == AuditEvent.GENESIS
    assert (await log.verify(SHARD)).ok
    assert not (await log.verify(SHARD, expect=saved)).ok


async def test_a_deleted_head_fails_and_the_next_entry_does_not_start_a_new_chain(store, redis):
    log = AuditLog(redis)
    await decided(store, 2)
    entries = await stream(redis)

    await redis.delete(CHAIN.head)
    verdict = await log.verify(SHARD)
    assert not verdict.ok and "the chain's head is missing" in verdict.problem

    # Dropping the newest entries too, then letting the product write on.
    await redis.xdel(CHAIN.stream, entries[-1][0])
    await decided(store, 1, tag="after")
    after = await stream(redis)
    assert events(after).count(AuditEvent.GENESIS) == 1
    assert events(after)[-3:] == [AuditEvent.HEAD_LOST, "created", "approved"]
    verdict = await log.verify(SHARD)
    assert not verdict.ok and "its head was deleted" in verdict.problem


async def test_an_emptied_log_is_not_a_fresh_start(store, redis):
    log = AuditLog(redis)
    await decided(store, 2)

    await redis.delete(CHAIN.stream, CHAIN.head)
    verdict = await log.verify(SHARD)
    assert not verdict.ok and "every entry was removed" in verdict.problem

    await decided(store, 1, tag="after")
    assert AuditEvent.GENESIS not in events(await stream(redis))
    assert not (await log.verify(SHARD)).ok


async def test_a_deleted_anchor_fails_verification(store, redis):
    await decided(store, 2)
    await redis.delete(CHAIN.anchor)
    verdict = await AuditLog(redis).verify(SHARD)
    assert not verdict.ok and "the chain's anchor is missing" in verdict.problem


async def test_the_stream_is_trimmed_in_the_chain_and_still_verifies(store, redis):
    await redis.set(CHAIN.cap, CAP)
    log = AuditLog(redis)

    await decided(store, 10)

    entries = await stream(redis)
    assert len(entries) <= CAP
    assert AuditEvent.GENESIS not in events(entries) and AuditEvent.TRIMMED in events(entries)
    verdict = await log.verify(SHARD)
    assert verdict.ok, verdict.problem
    trim = verdict.trim
    assert trim is not None and trim.fields["event"] == AuditEvent.TRIMMED
    assert trim.id == [i for i, f in entries if f["event"] == AuditEvent.TRIMMED][-1]
    assert int(trim.fields["removed"]) > 0 and trim.fields["kept_from"] == entries[0][0]
    assert entries[0][1]["prev"] == trim.fields["last_hash"] == (await redis.get(CHAIN.anchor)).decode()
    # A trim through AuditLog.append works the same way.
    for n in range(CAP):
        await log.append("rule_added", actor="U0ALICE", rule=f"Bash(step{n} *)")
    assert len(await stream(redis)) <= CAP and (await log.verify(SHARD)).ok


async def test_deleting_the_oldest_entries_after_a_trim_fails_verification(store, redis):
    await redis.set(CHAIN.cap, CAP)
    log = AuditLog(redis)
    await decided(store, 10)
    entries = await stream(redis)
    assert (await log.verify(SHARD)).ok

    # The oldest kept entry goes.
    await redis.xdel(CHAIN.stream, entries[0][0])
    verdict = await log.verify(SHARD)
    assert not verdict.ok and "the oldest entries were removed" in verdict.problem

    # And the anchor is moved to match the new oldest entry: no trim says so.
    await redis.set(CHAIN.anchor, entries[1][1]["prev"])
    verdict = await log.verify(SHARD)
    assert not verdict.ok and "no trim records it" in verdict.problem


async def test_a_trim_never_removes_entries_whose_chain_is_broken(store, redis):
    log = AuditLog(redis)
    await decided(store, 2)  # genesis + 4 entries
    entries = await stream(redis)
    await redis.xdel(CHAIN.stream, entries[1][0])  # the oldest entries, which a trim would remove next
    await redis.set(CHAIN.cap, CAP)

    await decided(store, 5, tag="later")

    after = await stream(redis)
    assert AuditEvent.TRIMMED not in events(after) and after[0] == entries[0]
    verdict = await log.verify(SHARD)
    assert not verdict.ok and "the entry before it was removed or changed" in verdict.problem


async def test_a_changed_old_entry_is_never_trimmed_away(store, redis):
    log = AuditLog(redis)
    await decided(store, 2)
    entries = await stream(redis)
    entry_id, _fields = entries[2]  # the first approval
    await redis.delete(CHAIN.stream)
    for i, f in entries:
        await redis.xadd(CHAIN.stream, {**f, "actor": "U0MALLORY"} if i == entry_id else f, id=i)
    await redis.set(CHAIN.cap, CAP)

    await decided(store, 5, tag="later")

    assert AuditEvent.TRIMMED not in events(await stream(redis))
    verdict = await log.verify(SHARD)
    assert not verdict.ok and f"entry {entry_id} was changed after it was written" in verdict.problem


async def test_verification_while_the_product_writes_and_trims(store, redis):
    await redis.set(CHAIN.cap, CAP * 3)
    log = AuditLog(redis)
    await decided(store, 1)
    writing = asyncio.create_task(decided(store, 40, tag="busy"))
    verdicts = []
    while not writing.done():
        verdicts.append(await log.verify(SHARD))
    await writing
    verdicts.append(await log.verify(SHARD))
    assert all(v.ok for v in verdicts), [v.problem for v in verdicts if not v.ok]
    assert any(v.trim is not None for v in verdicts)


@pytest.mark.slow
async def test_audit_verify_expect_on_the_command_line(tmp_path, store, redis, redis_server):
    url = redis_server.url
    await decided(store, 2)

    code, out, err = await run("audit", "--verify", cwd=tmp_path, REDIS_URL=url)
    assert code == 0, err
    head = (await redis.get(CHAIN.head)).decode()
    assert out.startswith(f"shard {SHARD}: ok: 5 entries, chain intact; head {head}\n  ") and "genesis" in out
    assert out.count("chain intact") == keys.SHARDS and "FAIL" not in out

    expect = f"{SHARD}:{head}"
    code, out, err = await run("audit", "--verify", "--expect", expect, cwd=tmp_path, REDIS_URL=url)
    assert code == 0, err
    assert "the saved head is entry" in out

    # The chain grew (and was trimmed): the saved head is still in it.
    await redis.set(CHAIN.cap, 20)
    await decided(store, 3, tag="later")
    code, out, err = await run("audit", "--verify", "--expect", expect, cwd=tmp_path, REDIS_URL=url)
    assert code == 0, err

    # Rewritten: fine on its own, not against the saved head; the failing shard is named.
    entries = await stream(redis)
    new_head = await rewrite(redis, [(i, f) for i, f in entries if f["event"] != "denied"])
    code, out, err = await run("audit", "--verify", cwd=tmp_path, REDIS_URL=url)
    assert code == 0 and f"head {new_head}" in out, err
    code, out, err = await run("audit", "--verify", "--expect", expect, cwd=tmp_path, REDIS_URL=url)
    assert code == 1 and f"shard {SHARD}: FAIL: the saved hash {head} is not in the chain" in out, (out, err)
    assert out.count("FAIL") == 1

    # Mistakes in the command are configuration errors.
    for wrong in ("not-a-hash", head, f"12:{head}", f"x:{head}"):
        code, _out, err = await run("audit", "--verify", "--expect", wrong, cwd=tmp_path, REDIS_URL=url)
        assert code == 2 and "--expect" in err, wrong
    code, _out, err = await run(
        "audit", "--verify", "--expect", expect, "--expect", expect, cwd=tmp_path, REDIS_URL=url
    )
    assert code == 2 and "--expect" in err
    code, _out, err = await run("audit", "--expect", expect, cwd=tmp_path, REDIS_URL=url)
    assert code == 2 and "--verify" in err


@pytest.mark.slow
async def test_the_command_line_shows_a_trim(tmp_path, store, redis, redis_server):
    await redis.set(CHAIN.cap, CAP)
    await decided(store, 6)
    code, out, err = await run("audit", "--verify", cwd=tmp_path, REDIS_URL=redis_server.url)
    assert code == 0, err
    assert "trimmed" in out


@pytest.mark.parametrize("cap", ["nan", "inf", "-3", "0", "0.5", "not a number", "99999999999"])
async def test_a_cap_that_cannot_be_used_is_ignored_and_nothing_fails(store, redis, cap):
    await redis.set(CHAIN.cap, cap)
    await decided(store, 3)
    entries = await stream(redis)
    assert len(entries) == 7 and AuditEvent.TRIMMED not in events(entries)
    assert (await AuditLog(redis).verify(SHARD)).ok


async def test_a_cap_or_anchor_of_the_wrong_type_fails_no_transition(store, redis):
    await decided(store, 1)
    await redis.delete(CHAIN.anchor)
    await redis.hset(CHAIN.anchor, "x", "1")
    await redis.hset(CHAIN.cap, "x", "1")

    await decided(store, 4, tag="after")

    assert len(await stream(redis)) == 11
    verdict = await AuditLog(redis).verify(SHARD)
    assert not verdict.ok and "cannot be read" in verdict.problem


async def test_a_cap_lowered_by_someone_with_redis_access_shows_and_loses_the_saved_head(store, redis):
    log = AuditLog(redis)
    await decided(store, 3)
    saved = (await log.verify(SHARD)).head

    await redis.set(CHAIN.cap, "1")
    await decided(store, 1, tag="after")

    verdict = await log.verify(SHARD)
    assert verdict.ok and verdict.trim is not None and verdict.trim.fields["cap"] == "1"
    verdict = await log.verify(SHARD, expect=saved)
    assert not verdict.ok and "or that entry was trimmed since" in verdict.problem


async def test_entries_cannot_carry_the_chain_fields(redis):
    with pytest.raises(ValueError):
        await AuditLog(redis).append("rule_added", actor="U0ALICE", prev="")
    assert await redis.xlen(CHAIN.stream) == 0


# -- one chain per shard ---------------------------------------------------------------------------


async def test_each_shard_keeps_its_own_chain_from_its_own_genesis(store, redis):
    for shard in (0, 3, 7):
        await decided(store, 2, tag=f"s{shard}-", shard=shard)

    verdicts = await AuditLog(redis).verify_all()
    assert all(v.ok for v in verdicts), [v.problem for v in verdicts]
    assert [v.checked for v in verdicts] == [5 if shard in (0, 3, 7) else 0 for shard in range(keys.SHARDS)]
    for shard in (0, 3, 7):
        entries = await stream(redis, keys.audit(shard))
        assert events(entries)[0] == AuditEvent.GENESIS and entries[0][1]["prev"] == ""
        assert verdicts[shard].head == entries[-1][1]["hash"]
        requests = {f["request"] for _id, f in entries if f["request"]}
        assert requests and {keys.shard_of(r) for r in requests} == {shard}


async def test_tampering_in_one_shard_fails_that_shard_only(store, redis):
    for shard in (0, 5):
        await decided(store, 2, tag=f"s{shard}-", shard=shard)
    chain = keys.audit(5)
    entries = await stream(redis, chain)
    entry_id, _fields = entries[2]  # the first approval in shard 5
    await redis.delete(chain.stream)
    for i, f in entries:
        await redis.xadd(chain.stream, {**f, "actor": "U0MALLORY"} if i == entry_id else f, id=i)

    log = AuditLog(redis)
    verdicts = await log.verify_all()
    assert [shard for shard, v in enumerate(verdicts) if not v.ok] == [5]
    assert f"entry {entry_id} was changed after it was written" in verdicts[5].problem
    assert (await log.verify(0)).ok


async def test_a_saved_head_is_checked_in_its_own_shard(store, redis):
    for shard in (0, 5):
        await decided(store, 1, tag=f"s{shard}-", shard=shard)
    log = AuditLog(redis)
    heads = {shard: (await log.verify(shard)).head for shard in (0, 5)}
    verdicts = await log.verify_all(heads)
    assert all(v.ok for v in verdicts) and verdicts[0].expected and verdicts[5].expected
    # Shard 0's head is no entry of shard 5's chain.
    verdict = await log.verify(5, expect=heads[0])
    assert not verdict.ok and "is not in the chain" in verdict.problem


async def test_each_shard_trims_to_its_own_cap(store, redis):
    await redis.set(keys.audit(2).cap, CAP)
    for shard in (0, 2):
        await decided(store, 6, tag=f"s{shard}-", shard=shard)

    trimmed = await stream(redis, keys.audit(2))
    assert len(trimmed) <= CAP and AuditEvent.TRIMMED in events(trimmed)
    assert len(await stream(redis, keys.audit(0))) == 13  # genesis + 12: no cap of its own
    verdicts = await AuditLog(redis).verify_all()
    assert all(v.ok for v in verdicts) and verdicts[2].trim is not None and verdicts[0].trim is None


async def test_reading_merges_the_shards_by_time_then_shard(store, redis):
    for shard in (4, 1, 9):
        await decided(store, 1, tag=f"s{shard}-", shard=shard)
    log = AuditLog(redis)
    merged = [entry async for entry in log.entries(batch=2)]
    assert len(merged) == 9 and {entry.shard for entry in merged} == {1, 4, 9}
    assert [entry.order for entry in merged] == sorted(entry.order for entry in merged)
    decided_by = [e for e in merged if e.fields["event"] in ("approved", "denied")]
    assert [keys.shard_of(e.fields["request"]) for e in decided_by] == [4, 1, 9]  # in the order they happened

    recent = await log.recent(actor="U0ALICE", events=frozenset({AuditEvent.APPROVED}), limit=2)
    assert [e.fields["request"] for e in recent] == [
        decided_by[2].fields["request"],
        decided_by[1].fields["request"],
    ]


async def write_legacy_chain(redis, count: int) -> str:
    """A chain as versions before the shards wrote it (``keys.LEGACY_AUDIT``); returns its head."""
    chain, prev = keys.LEGACY_AUDIT, ""
    for n in range(count):
        own = {
            "event": AuditEvent.GENESIS if n == 0 else "approved",
            "request": "",
            "actor": "system",
            "at": "1",
        }
        digest = entry_hash(prev, [(k.encode(), v.encode()) for k, v in own.items()])
        await redis.xadd(chain.stream, {**own, "prev": prev, "hash": digest})
        prev = digest
    await redis.set(chain.head, prev)
    await redis.set(chain.anchor, "")
    return prev


async def test_the_legacy_chain_is_no_longer_written_and_still_verifies(store, redis):
    head = await write_legacy_chain(redis, 3)
    await decided(store, 1)
    assert await redis.xlen(keys.LEGACY_AUDIT.stream) == 3
    log = AuditLog(redis)
    verdict = await log.verify_legacy(expect=head)
    assert verdict.ok and verdict.checked == 3 and verdict.head == head and verdict.expected
    assert [e.fields["event"] async for e in log.entries(legacy=True)] == [
        AuditEvent.GENESIS,
        "approved",
        "approved",
    ]
    await redis.xdel(keys.LEGACY_AUDIT.stream, (await redis.xrange(keys.LEGACY_AUDIT.stream))[1][0])
    assert not (await log.verify_legacy()).ok
    assert all(v.ok for v in await log.verify_all())  # the shards' chains are apart from it


@pytest.mark.slow
async def test_the_command_line_verifies_and_exports_the_legacy_chain(tmp_path, store, redis, redis_server):
    url = redis_server.url
    head = await write_legacy_chain(redis, 2)
    await decided(store, 1)
    code, out, err = await run("audit", "--verify", "--legacy", "--expect", head, cwd=tmp_path, REDIS_URL=url)
    assert code == 0 and out.startswith(f"ok: 2 entries, chain intact; head {head}\n"), (out, err)
    code, out, err = await run("audit", "--legacy", cwd=tmp_path, REDIS_URL=url)
    assert code == 0 and [json.loads(line)["event"] for line in out.splitlines()] == ["genesis", "approved"]
    code, _out, err = await run(
        "audit", "--verify", "--legacy", "--expect", f"0:{head}", cwd=tmp_path, REDIS_URL=url
    )
    assert code == 2 and "--expect" in err
