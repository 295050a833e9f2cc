"""The floors of the path, measured on the same machine in the same run.

A click crosses one HTTP request into a worker and one Redis message out to
the agent; a request crosses one Redis hop to a worker and one HTTP request
to Slack. So the floor of either latency is a bare aiohttp POST round trip
(to a handler that does nothing, in another process) plus a bare Redis
SPUBLISH → subscriber round trip (sharded pub/sub, as decisions travel). Run
as ``python -m bot.bench.floor PORT`` it is that do-nothing server.
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp
from aiohttp import web
from redis.asyncio.client import PubSub

from ..redis_client import RedisClient

FLOOR_CHANNEL = "bench:floor"


async def publish_round_trips(publisher: RedisClient, subscriber: RedisClient, samples: int) -> list[float]:
    """Seconds from SPUBLISH sent to the message read by a subscriber, one at a time."""
    pubsub = subscriber.pubsub()
    await pubsub.ssubscribe(FLOOR_CHANNEL)
    await _next_message(pubsub, "ssubscribe")
    times = []
    try:
        for index in range(samples):
            start = time.monotonic()
            await publisher.spublish(FLOOR_CHANNEL, str(index))
            await _next_message(pubsub, "smessage")
            times.append(time.monotonic() - start)
    finally:
        await pubsub.aclose()
    return times


async def bulk_publish(publisher: RedisClient, subscriber: RedisClient, count: int) -> float:
    """Seconds from sending ``count`` SPUBLISHes in one pipeline until a subscriber has read them all."""
    pubsub = subscriber.pubsub()
    await pubsub.ssubscribe(FLOOR_CHANNEL)
    await _next_message(pubsub, "ssubscribe")

    async def read_all() -> None:
        for _ in range(count):
            await _next_message(pubsub, "smessage")

    try:
        reading = asyncio.create_task(read_all())
        start = time.monotonic()
        async with publisher.pipeline(transaction=False) as pipe:
            for index in range(count):
                pipe.spublish(FLOOR_CHANNEL, str(index))
            await pipe.execute()
        await reading
        return time.monotonic() - start
    finally:
        await pubsub.aclose()


async def post_round_trips(
    session: aiohttp.ClientSession, url: str, body: bytes, samples: int
) -> list[float]:
    """Seconds per POST of ``body`` to the do-nothing server, one at a time."""
    times = []
    for _ in range(samples):
        start = time.monotonic()
        async with session.post(url, data=body) as response:
            await response.read()
        times.append(time.monotonic() - start)
    return times


async def post_rate(
    session: aiohttp.ClientSession, url: str, body: bytes, count: int, concurrency: int
) -> float:
    """POSTs per second the do-nothing server answers with ``concurrency`` in flight."""
    slots = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with slots, session.post(url, data=body) as response:
            await response.read()

    start = time.monotonic()
    await asyncio.gather(*(one() for _ in range(count)))
    return count / (time.monotonic() - start)


async def _next_message(pubsub: PubSub, kind: str) -> None:
    while True:
        message = await pubsub.get_sharded_message(timeout=5)
        if message is None:
            raise TimeoutError(f"no {kind} from Redis within 5s")
        if message["type"] == kind:
            return


async def _nothing(_request: web.Request) -> web.Response:
    return web.Response()


def main(port: int) -> None:
    app = web.Application()
    app.router.add_post("/", _nothing)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main(int(sys.argv[1]))
