"""The workers' shared Slack budget: token buckets in Redis, by method and by channel.

Slack's rate limits apply per app and per workspace, so every worker of one
installation draws on one budget (``rates.RATES``, times ``SLACK_RATE_SCALE``).
Each Web API call first takes a token from its method's bucket (for
``chat.postMessage`` from its channel's bucket and the workspace-wide one);
when none is left the call waits until Slack's limit allows it, instead of
being sent and answered 429. A 429 that comes anyway (another app, a clock
step) pauses that method, or that channel for posts, for every worker until
its ``Retry-After`` has passed.

Priorities (``Priority``): a lower priority takes a token only while its
bucket holds more than a reserve kept for the higher ones, so a backlog of
posts never delays the update of a message somebody just clicked. The
interactive path (a click's modal, which must open within 3 s of the click)
never waits on the budget and never sleeps on a 429: it goes at once and its
call is counted afterwards, taking a token even from a dry bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from enum import IntEnum
from typing import Any

from ..approvals import keys
from ..redis_client import RedisClient
from .rates import POSTS_PER_WORKSPACE, Rate, rate_for

log = logging.getLogger(__name__)


class Priority(IntEnum):
    """Whose wait a Slack call ends, most urgent first."""

    PERSON = 0
    """A person is waiting on it: the update of the message they clicked, a private reply, a modal."""
    POST = 1
    """A new request's message."""
    REMIND = 2
    """An escalation's reminder."""
    AUDIT = 3
    """Thread reads for the audit log, and the outcome line under a discussed request."""


RESERVE: dict[Priority, float] = {
    Priority.PERSON: 0.0,
    Priority.POST: 0.25,
    Priority.REMIND: 0.5,
    Priority.AUDIT: 0.75,
}
"""Share of a bucket's burst a priority leaves for the ones above it (never the whole bucket:
with a burst of one every priority may take the last token, in turn)."""

ACCOUNTING_TIMEOUT = 2.0
"""Seconds the after-the-fact count of an interactive call may take (a stalled Redis must not pile them up)."""

_priority: ContextVar[Priority] = ContextVar("slack_priority", default=Priority.PERSON)


@contextlib.contextmanager
def priority(level: Priority) -> Iterator[None]:
    """Slack calls made inside the block (in this task) draw on the budget at ``level``."""
    token = _priority.set(level)
    try:
        yield
    finally:
        _priority.reset(token)


def current_priority() -> Priority:
    return _priority.get()


# KEYS: the buckets of one call (method; channel and workspace for posts).
# ARGV: per bucket: tokens per second, burst, reserve; then force ('1' or '').
# A bucket refills from its stored count since it was counted ('at'), up to
# its burst; a missing bucket is full. The time is Redis's own, so every
# worker's clock agrees. Result: '0' when a token was taken from every bucket,
# else the seconds to wait (as a string: Redis would cut a Lua number to an
# integer). With force the token is taken anyway, and a bucket may go below 0:
# the call is made regardless (the interactive path), and later callers wait
# for what it spent.
TAKE = """#!lua
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local force = ARGV[#KEYS * 3 + 1] == '1'
local ttl = tonumber('${ttl}')
local wait = 0
local tokens = {}
for i = 1, #KEYS do
  local rate, burst, reserve = tonumber(ARGV[i * 3 - 2]), tonumber(ARGV[i * 3 - 1]), tonumber(ARGV[i * 3])
  local b = redis.call('HMGET', KEYS[i], 'tokens', 'at', 'paused')
  local have = tonumber(b[1]) or burst
  local at = tonumber(b[2]) or now
  local paused = tonumber(b[3]) or 0
  if now > at then have = math.min(burst, have + (now - at) * rate) end
  tokens[i] = have
  if paused > now then wait = math.max(wait, paused - now) end
  local short = 1 + reserve - have
  if short > 0 then wait = math.max(wait, short / rate) end
end
if wait > 0 and not force then return tostring(wait) end
for i = 1, #KEYS do
  local burst = tonumber(ARGV[i * 3 - 1])
  redis.call('HSET', KEYS[i], 'tokens', tostring(math.max(tokens[i] - 1, -burst)), 'at', tostring(now))
  local paused = tonumber(redis.call('HGET', KEYS[i], 'paused') or '0') or 0
  redis.call('EXPIRE', KEYS[i], ttl + math.max(0, math.ceil(paused - now)))
end
return '0'
""".replace("${ttl}", str(keys.RATE_BUCKET_TTL))

# KEYS: one bucket. ARGV: seconds (Retry-After).
# Slack refused a call: nothing is sent from this bucket until then, by anyone.
PAUSE = """#!lua
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ends = now + tonumber(ARGV[1])
local paused = tonumber(redis.call('HGET', KEYS[1], 'paused') or '0') or 0
if ends > paused then redis.call('HSET', KEYS[1], 'paused', tostring(ends)) end
redis.call('HSET', KEYS[1], 'tokens', '0', 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], tonumber('${ttl}') + math.ceil(tonumber(ARGV[1])))
return 'ok'
""".replace("${ttl}", str(keys.RATE_BUCKET_TTL))


class SlackBudget:
    """Token buckets in Redis that every worker's Slack calls draw on."""

    def __init__(self, redis: RedisClient, *, scale: float = 1.0) -> None:
        """``scale``: Slack's documented rates times this (``SLACK_RATE_SCALE``; test doubles run sped up)."""
        self.redis = redis
        self.scale = scale
        self._take = redis.register_script(TAKE)
        self._pause = redis.register_script(PAUSE)
        self._accounting: set[asyncio.Task[None]] = set()

    def buckets(self, method: str, channel: str = "") -> list[tuple[str, Rate]]:
        """The buckets a call of ``method`` (to ``channel``) draws on, with their limits."""
        rate = rate_for(method)
        if rate.per_channel and channel:
            return [
                (keys.rate_bucket(method, channel), self._ours(rate)),
                (keys.rate_bucket(POSTS_PER_WORKSPACE), self._ours(rate_for(POSTS_PER_WORKSPACE))),
            ]
        return [(keys.rate_bucket(method), self._ours(rate))]

    def _ours(self, rate: Rate) -> Rate:
        return rate.scaled(self.scale).with_headroom()

    async def take(
        self, method: str, channel: str = "", level: Priority = Priority.PERSON, *, force: bool = False
    ) -> float:
        """Take a token for one call: 0.0 when taken, else the seconds until one may be."""
        buckets = self.buckets(method, channel)
        args: list[Any] = []
        for _key, rate in buckets:
            reserve = min(RESERVE[level] * rate.burst, rate.burst - 1)
            args += [repr(rate.per_second), rate.burst, repr(reserve)]
        args.append("1" if force else "")
        return float(await self._take(keys=[key for key, _ in buckets], args=args))

    async def acquire(self, method: str, channel: str = "", level: Priority | None = None) -> None:
        """Wait until the budget allows one call of ``method`` at ``level`` (the task's priority by default)."""
        level = current_priority() if level is None else level
        while (wait := await self.take(method, channel, level)) > 0:
            await asyncio.sleep(wait)

    async def pause(self, method: str, channel: str, seconds: float) -> None:
        """Slack answered 429: nobody calls ``method`` (a post: in ``channel``) for ``seconds``."""
        key, _rate = self.buckets(method, channel)[0]
        await self._pause(keys=[key], args=[repr(max(seconds, 0.0))])

    def count_later(self, method: str, channel: str, retry_after: float | None) -> None:
        """Count a call already made (the interactive path), and a 429's pause, in the background."""
        task = asyncio.create_task(self._count(method, channel, retry_after), name=f"budget-{method}")
        self._accounting.add(task)
        task.add_done_callback(self._accounting.discard)

    async def _count(self, method: str, channel: str, retry_after: float | None) -> None:
        try:
            async with asyncio.timeout(ACCOUNTING_TIMEOUT):
                if retry_after is not None:
                    await self.pause(method, channel, retry_after)
                else:
                    await self.take(method, channel, Priority.PERSON, force=True)
        except Exception as exc:  # a count lost costs at most one call's worth of budget
            log.warning("Slack budget: %s not counted (%s)", method, type(exc).__name__)

    async def aclose(self) -> None:
        """Stop the counts still running; call it before closing ``redis``."""
        tasks = list(self._accounting)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
