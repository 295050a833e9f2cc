"""A worker survives whatever Redis answers, and ``/healthz`` says when it cannot work.

Each fault is made on the real redis-server, without mocks: a failover that
leaves the worker on a read-only replica (READONLY), a primary that lost its
replicas (NOREPLICAS), a disk that refuses snapshots (MISCONF), a script that
hogs the server (BUSY), a restart that is still loading its data (LOADING), a
frozen server, a connection left half-open (no answer, ever) and entries in
the jobs stream that no worker can read. While the fault lasts ``/healthz``
answers 503 and names the loop that cannot work; afterwards it answers 200 and
a request is posted and approved as usual. Then the loops' supervisor itself
(bugs, stray cancels, a task that ends anyway) and the agent's dispatcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.approvals import keys
from bot.approvals.queue import queued
from bot.slack.ids import Action
from bot.slack.jobs import CONSUMER_LOOP, SWEEPER_LOOP, consumer_loop
from bot.tasks import LoopSupervisor
from tests.conftest import cancelled, context, posted
from tests.fakes.redis_server import BlackHoleProxy, RedisServer, free_port
from tests.fakes.slack_api import FakeSlack
from tests.fakes.worker import Worker

CONSUMER, SWEEPER = CONSUMER_LOOP, SWEEPER_LOOP

Refused = Callable[[], Awaitable[None]]
"""Returns once Redis has refused the worker's read of the jobs stream at least once."""
Fault = Callable[[Redis, RedisServer], contextlib.AbstractAsyncContextManager[Refused]]


# -- helpers -----------------------------------------------------------------


async def health(worker: Worker) -> tuple[int, dict[str, Any]]:
    async with worker.session.get(f"{worker.url}/healthz") as response:
        return response.status, await response.json()


async def until_health(
    worker: Worker,
    status: int,
    check: Callable[[dict[str, Any]], bool] = lambda _body: True,
    timeout: float = 10,
) -> dict[str, Any]:
    """The first ``/healthz`` body with ``status`` that passes ``check``; fails after ``timeout`` seconds."""
    seen: tuple[int, dict[str, Any]] | None = None
    loop = asyncio.get_running_loop()
    until = loop.time() + timeout
    while loop.time() < until:
        seen = await health(worker)
        if seen[0] == status and check(seen[1]):
            return seen[1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"/healthz never answered {status} as expected within {timeout}s; last: {seen}")


def failing(*loops: str, saying: str = "") -> Callable[[dict[str, Any]], bool]:
    """A check: the body names every loop in ``loops`` as not working (the consumer: at least one
    shard's), one of them with ``saying`` in its error."""

    def check(body: dict[str, Any]) -> bool:
        shown = {name: problems for name, problems in body.get("loops", {}).items()}
        named = {loop: [v for k, v in shown.items() if k.partition(":")[0] == loop] for loop in loops}
        return all(named.values()) and any(
            saying.lower() in str(problem).lower() for problems in named.values() for problem in problems
        )

    return check


def _roots(slack: FakeSlack) -> list[Any]:
    return [
        c for c in slack.calls_to("chat.postMessage") if c.response.get("ok") and not c.args.get("thread_ts")
    ]


async def a_request_is_posted_and_approved(
    worker: Worker, make_approver, slack: FakeSlack, *, within: float = 5
) -> None:
    """What a user notices when the worker works: the request shows up in Slack and Approve lets the tool run."""
    approver = await make_approver()
    before = len(_roots(slack))
    tool_input = {"command": "echo still-working", "description": "Prove the worker still works"}
    decision = asyncio.create_task(
        approver.can_use_tool("Bash", tool_input, context(f"toolu_after_{before}"))
    )
    try:
        await slack.wait_for(lambda: len(_roots(slack)) > before, timeout=within)
        message = await posted(slack, before + 1)
        await worker.click("U_ALICE", Action.APPROVE, message, name="alice")
        result = await asyncio.wait_for(decision, 10)
    finally:
        if not decision.done():
            await cancelled(decision)
    assert result.behavior == "allow"
    assert result.updated_input == tool_input


# -- Redis faults, each made real and undone ----------------------------------


async def _refused_reads(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_xreadgroup", {}).get("rejected_calls", 0))


def refusal_after(redis: Redis, before: int) -> Refused:
    """Redis's own count of refused XREADGROUPs grew: the consumer has met the fault (any code, old or new)."""

    async def refused() -> None:
        for _ in range(200):
            if await _refused_reads(redis) > before:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("Redis never refused the worker's read of the jobs stream")

    return refused


@contextlib.asynccontextmanager
async def read_only(redis: Redis, _server: RedisServer) -> AsyncIterator[Refused]:
    """A failover demoted this Redis: it is now a replica (of a primary that is gone) and refuses writes."""
    before = await _refused_reads(redis)
    await redis.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))
    try:
        yield refusal_after(redis, before)
    finally:
        await redis.execute_command("REPLICAOF", "NO", "ONE")


@contextlib.asynccontextmanager
async def no_replicas(redis: Redis, _server: RedisServer) -> AsyncIterator[Refused]:
    """``min-replicas-to-write`` with no replica connected: every write is refused."""
    before = await _refused_reads(redis)
    await redis.config_set("min-replicas-to-write", 1)
    try:
        yield refusal_after(redis, before)
    finally:
        await redis.config_set("min-replicas-to-write", 0)


@contextlib.asynccontextmanager
async def disk_refused(redis: Redis, server: RedisServer) -> AsyncIterator[Refused]:
    """A snapshot failed with ``stop-writes-on-bgsave-error yes``: writes (and PING) answer MISCONF.

    The snapshot fails because a directory stands where its file must go
    (root ignores file permissions, a directory it cannot rename over)."""
    target = server.workdir / "dump.rdb"
    target.unlink(missing_ok=True)  # unused: the server loads its AOF
    target.mkdir()
    before = await _refused_reads(redis)
    try:
        # The MISCONF check applies only while save points are configured.
        await redis.config_set("save", "3600 1")
        await redis.config_set("stop-writes-on-bgsave-error", "yes")
        await redis.bgsave()
        for _ in range(200):
            info = await redis.info("persistence")
            if not info["rdb_bgsave_in_progress"] and info["rdb_last_bgsave_status"] == "err":
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError(f"the snapshot did not fail: {info}")
        yield refusal_after(redis, before)
    finally:
        await redis.config_set("save", "")
        target.rmdir()


@contextlib.asynccontextmanager
async def busy_script(_redis: Redis, server: RedisServer) -> AsyncIterator[Refused]:
    """A Lua script that never ends: past ``busy-reply-threshold`` every other command answers BUSY."""
    # Connections made before the fault: a new one would be refused (its
    # handshake answers BUSY too), and SCRIPT KILL must get through.
    # One try, no read timeout: a retry after a timeout would start a second spin.
    spinner = Redis(port=server.port, socket_timeout=None, retry=Retry(NoBackoff(), 0))
    admin = Redis(port=server.port, single_connection_client=True)
    await admin.ping()
    await admin.config_set("busy-reply-threshold", 100)
    spinning = asyncio.create_task(spinner.eval("while true do end", 0))

    async def refused() -> None:
        # A busy server answers nothing else, INFO included, so Redis cannot
        # tell; the consumer's own report of BUSY (checked first) is the proof.
        return None

    try:
        yield refused
    finally:
        for _ in range(100):
            with contextlib.suppress(Exception):
                await admin.script_kill()
                break
            await asyncio.sleep(0.05)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(spinning, 5)
        await admin.config_set("busy-reply-threshold", 5000)
        await admin.aclose()
        await spinner.aclose()


@contextlib.asynccontextmanager
async def still_loading(redis: Redis, server: RedisServer) -> AsyncIterator[Refused]:
    """A restart with a data set that takes a while to load: until it is in, commands answer LOADING."""
    filler = "x" * 3000
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(200):
            pipe.set(f"filler:{i}", filler)
        await pipe.execute()
    # Into the AOF's base snapshot: the per-key load delay applies to it.
    await redis.bgrewriteaof()
    for _ in range(250):
        info = await redis.info("persistence")
        if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            break
        await asyncio.sleep(0.02)
    server.stop()
    # ~20 ms a key, 200 keys: about four seconds of LOADING; with a small
    # events interval the server answers (LOADING) between keys.
    server.start(
        "--key-load-delay", "20000", "--loading-process-events-interval-bytes", "1024", until_ready=False
    )
    try:
        yield refusal_after(redis, 0)  # a new process: its counts start at 0
    finally:
        for _ in range(300):
            with contextlib.suppress(Exception):
                if await redis.ping():
                    break
            await asyncio.sleep(0.05)
        await redis.config_set("key-load-delay", 0)


def anything(_body: dict[str, Any]) -> bool:
    return True


FAULTS: dict[str, tuple[Fault, Callable[[dict[str, Any]], bool]]] = {
    "readonly": (read_only, failing(CONSUMER, saying="ReadOnly")),
    "noreplicas": (no_replicas, failing(CONSUMER, saying="NOREPLICAS")),
    "misconf": (disk_refused, failing(CONSUMER, saying="MISCONF")),
    "busy": (busy_script, failing(CONSUMER, saying="BUSY")),
    # redis-py retries LOADING (a ConnectionError to it) a few times before it
    # reports it, and PING times out meanwhile: any 503 is the truth here.
    "loading": (still_loading, anything),
}


@pytest.mark.slow
@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
async def test_a_worker_reports_a_redis_fault_and_works_again_after_it(
    fault, redis, redis_server, start_worker, make_approver, slack
):
    make_fault, reported = fault
    worker = await start_worker()
    await until_health(worker, 200)

    async with make_fault(redis, redis_server) as refused:
        body = await until_health(worker, 503, reported)
        assert body["ok"] is False
        await refused()  # the consumer has met the fault, however the worker reports it

    body = await until_health(worker, 200)
    assert body == {"ok": True}
    await a_request_is_posted_and_approved(worker, make_approver, slack)


@pytest.mark.slow
async def test_a_worker_started_on_a_read_only_redis_waits_for_it(
    redis, redis_server, start_worker, make_approver, slack
):
    """The consumer group cannot even be created (XGROUP CREATE is a write): the worker waits, it does not crash."""
    async with read_only(redis, redis_server):
        worker = await start_worker()
        body = await until_health(worker, 503, failing(CONSUMER, saying="ReadOnly"))
        assert "redis" not in body
    await until_health(worker, 200)
    await a_request_is_posted_and_approved(worker, make_approver, slack)


@pytest.mark.slow
async def test_a_redis_that_flaps_leaves_a_working_worker(
    redis, redis_server, start_worker, make_approver, slack
):
    """Failover, failback, failover again: every refusal is survived, whichever loop meets it."""
    worker = await start_worker()
    await until_health(worker, 200)
    for _ in range(3):
        async with no_replicas(redis, redis_server) as refused:
            await refused()
        await until_health(worker, 200)
    await a_request_is_posted_and_approved(worker, make_approver, slack)


@pytest.mark.slow
async def test_a_replica_fault_names_every_loop_that_cannot_write(redis, redis_server, start_worker):
    """The sweeper re-claims jobs (XAUTOCLAIM, a write): it fails with the consumer, and says so."""
    worker = await start_worker()
    await until_health(worker, 200)
    async with read_only(redis, redis_server):
        body = await until_health(worker, 503, failing(CONSUMER, SWEEPER, saying="ReadOnly"))
        # PING works on a replica: only the loops can tell that this worker cannot work.
        assert "redis" not in body
        for name in (consumer_loop(0), SWEEPER):
            shown = body["loops"][name]
            assert shown["state"] == "failing"
            assert shown["failures"] >= 1
            assert shown["since"] > 0
    await until_health(worker, 200)


@pytest.mark.slow
async def test_a_half_open_connection_does_not_stall_the_worker(
    redis_server, start_worker, make_approver, slack
):
    """A connection that never answers (and never errors) must not hold the job consumer forever.

    The client's read timeout is what frees it; this keeps that true for the
    consumer's blocking read of the jobs stream."""
    proxy = BlackHoleProxy(redis_server.port)
    await proxy.start()
    try:
        worker = await start_worker(redis_url=proxy.url)
        await until_health(worker, 200)
        proxy.cut()  # every connection the worker holds now swallows its commands
        # New connections work: the request must be posted by a consumer that gave its dead one up.
        await a_request_is_posted_and_approved(worker, make_approver, slack, within=20)
        await until_health(worker, 200, timeout=20)
    finally:
        await proxy.close()


@pytest.mark.slow
async def test_a_frozen_redis_is_reported_and_survived(redis_server, start_worker, make_approver, slack):
    """Redis stops answering for a while (a stuck fork, a paused VM): 503 while it lasts, then work goes on."""
    worker = await start_worker()
    await until_health(worker, 200)
    assert redis_server.process is not None
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        body = await until_health(worker, 503, lambda b: "redis" in b)
        assert body["ok"] is False
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    await until_health(worker, 200)
    await a_request_is_posted_and_approved(worker, make_approver, slack)


# -- entries no worker can read ------------------------------------------------


async def test_a_jobs_entry_that_is_not_text_does_not_stop_the_consumer(
    redis, start_worker, make_approver, slack
):
    """Anything that can write to Redis (an agent host of another version, a bug) can put bytes in the stream."""
    worker = await start_worker()
    await until_health(worker, 200)
    await redis.xadd(keys.jobs(3), {b"kind": b"\xff\xfe", b"id": b"\x80"})
    await a_request_is_posted_and_approved(worker, make_approver, slack)
    # The unreadable entry was dropped, not left to be re-claimed forever.
    for _ in range(100):
        if await queued(redis) == 0:
            break
        await asyncio.sleep(0.05)
    assert await queued(redis) == 0
    await until_health(worker, 200)


async def test_a_job_that_keeps_failing_is_dropped_after_its_deliveries(redis, start_worker):
    """A post job without a request id can never succeed: after its last delivery it leaves the stream."""
    worker = await start_worker(job_retry_after=0.05)
    await until_health(worker, 200)
    await redis.xadd(keys.jobs(11), {"kind": "post"})
    for _ in range(200):
        if await queued(redis) == 0:
            break
        await asyncio.sleep(0.05)
    assert await queued(redis) == 0, "the job is re-claimed forever"
    await until_health(worker, 200)


# -- the agent's decision dispatcher --------------------------------------------


async def test_a_decision_dispatcher_that_ends_anyway_is_restarted_and_wakes_its_waits(
    start_worker, make_approver, slack
):
    """Every wait of an agent process hangs on one dispatcher task: if anything but close() ends it, it comes back."""
    worker = await start_worker()
    approver = await make_approver()
    tool_input = {"command": "echo woken", "description": "Wake after the dispatcher died"}
    decision = asyncio.create_task(approver.can_use_tool("Bash", tool_input, context("toolu_dispatcher")))
    try:
        message = await posted(slack)
        dispatcher = approver._waiter._task
        assert dispatcher is not None
        dispatcher.cancel()  # something other than close() ends it
        await asyncio.wait({dispatcher}, timeout=5)
        await worker.click("U_ALICE", Action.APPROVE, message, name="alice")
        result = await asyncio.wait_for(asyncio.shield(decision), 10)
    finally:
        if not decision.done():
            await cancelled(decision)
    assert result.behavior == "allow"


# -- the supervisor itself ------------------------------------------------------


class Fatal(BaseException):
    """Not an Exception: what ends a task however it is written."""


async def _until(predicate: Callable[[], bool], timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def test_a_loop_that_hits_a_bug_logs_once_backs_off_and_recovers(caplog):
    calls: list[int] = []

    async def step() -> None:
        calls.append(1)
        if len(calls) <= 4:
            raise ValueError("a bug in the loop")
        await asyncio.sleep(0.01)

    loops = LoopSupervisor(first_backoff=0.001, max_backoff=0.01)
    with caplog.at_level(logging.INFO, logger="bot.tasks"):
        loops.start("buggy", step)
        await _until(lambda: len(calls) >= 2)
        assert loops.problems()["buggy"]["error"] == "ValueError: a bug in the loop"
        await _until(lambda: len(calls) >= 6)
        await _until(lambda: loops.problems() == {})
        await loops.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    # The first failure with its traceback; the three after it are not repeated.
    assert len(warnings) == 1 and warnings[0].exc_info is not None
    assert any("recovered" in r.getMessage() and r.levelno == logging.INFO for r in caplog.records)


async def test_an_expected_error_is_logged_without_a_traceback_and_summarised(caplog):
    failures = 0

    async def step() -> None:
        nonlocal failures
        failures += 1
        raise ConnectionRefusedError("Redis is down")

    loops = LoopSupervisor(first_backoff=0.001, max_backoff=0.002, summary_every=0.05, expected=(OSError,))
    with caplog.at_level(logging.WARNING, logger="bot.tasks"):
        loops.start("down", step)
        await _until(lambda: failures >= 5)
        await asyncio.sleep(0.12)
        await loops.close()
    first, *later = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert first.exc_info is None and "Redis is down" in first.getMessage()
    assert later, "a long outage is summarised now and then"
    assert all("still failing" in r.getMessage() for r in later)
    assert len(later) < failures - 1


async def test_a_stray_cancellation_does_not_end_a_loop():
    """A CancelledError nobody asked this task for (a library cancelling its own work) is a failure, not a stop."""
    calls = 0

    async def step() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise asyncio.CancelledError()
        await asyncio.sleep(0.01)

    loops = LoopSupervisor(first_backoff=0.001, max_backoff=0.01)
    loops.start("cancelled-inside", step)
    await _until(lambda: calls >= 3)
    await loops.close()


async def test_a_loop_that_ends_anyway_is_reported_dead_and_restarted(caplog):
    runs = 0
    release = asyncio.Event()

    async def step() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise Fatal()
        await release.wait()
        await asyncio.sleep(0.01)

    loops = LoopSupervisor(first_backoff=0.2, max_backoff=0.2)
    with caplog.at_level(logging.ERROR, logger="bot.tasks"):
        loops.start("fragile", step)
        await _until(lambda: "fragile" in loops.problems())
        assert loops.problems()["fragile"]["state"] == "died"
        assert loops.problems()["fragile"]["error"] == "Fatal"
        await _until(lambda: runs >= 2)  # restarted
        release.set()
        await _until(lambda: loops.problems() == {})
        await loops.close()
    assert any(r.levelno == logging.ERROR and "fragile" in r.getMessage() for r in caplog.records)


def test_a_step_that_never_suspends_does_not_starve_the_worker():
    """A loop with nothing to do (an early return, a zero interval) must still let everything else run.

    In a thread of its own, so a starved event loop fails the test in bounded
    time instead of hanging the whole session."""
    ticks: list[int] = []

    async def scenario() -> None:
        async def step() -> None:
            return None  # never suspends

        loops = LoopSupervisor()
        loops.start("eager", step)
        for tick in range(5):
            await asyncio.sleep(0)
            ticks.append(tick)
        await loops.close()

    runner = threading.Thread(target=asyncio.run, args=(scenario(),), daemon=True)
    runner.start()
    runner.join(timeout=5)
    assert not runner.is_alive() and ticks == [0, 1, 2, 3, 4], "the loop kept the event loop to itself"


async def test_closing_ends_every_loop_and_restarts_none():
    started = 0

    async def step() -> None:
        nonlocal started
        started += 1
        await asyncio.sleep(3600)

    loops = LoopSupervisor(first_backoff=0.001, max_backoff=0.01)
    loops.start("sleeper", step)
    await _until(lambda: started == 1)
    await asyncio.wait_for(loops.close(), 5)
    await asyncio.sleep(0.05)
    assert started == 1
    assert loops.problems() == {}
