"""Slow and idle clients cannot starve a worker: a deadline for request headers, a cap on
connections, and accept errors logged at a bounded rate.

aiohttp's server gives a request's headers no deadline of their own: a client
that sends a header line every few seconds keeps its connection, and a file
descriptor, for an hour (its keep-alive default). Enough of them exhaust the
worker's open-file limit. Then ``accept()`` fails for Slack too, the Redis and
Slack clients cannot open sockets (a post waited a minute), and asyncio logs
every failed accept, up to a hundred per loop iteration (31,000 lines in 10 s
were seen). So each connection must finish its request head within
``HTTP_HEADER_TIMEOUT`` once it starts one; at most ``HTTP_MAX_CONNECTIONS``
connections are held, never more than half the open-file limit; past the cap
the oldest connection not being served makes room; and repeated log lines of
one kind are let through at most a few times per interval, with a count of
the rest.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from yarl import URL

from .log_floods import limit_log_floods
from .settings import Settings

log = logging.getLogger(__name__)


BACKLOG = 128
"""Connections the kernel queues for ``accept()``, at most (aiohttp's default)."""


@dataclass(frozen=True)
class Budget:
    """How many file descriptors client connections may take."""

    connections: int
    """Held at once (``HTTP_MAX_CONNECTIONS``, within the open-file limit)."""
    backlog: int
    """Queued by the kernel; asyncio also accepts up to this many in one go, each holding a
    descriptor until the guard has looked at it (and closed it, past the cap)."""


def budget(configured: int) -> Budget:
    """``configured`` connections, but with all that clients can hold at once (the connections,
    and two backlogs being accepted and closed) within half the process's open-file limit:
    the other half is Redis's, Slack's and the logs'."""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return Budget(configured, BACKLOG)
    if soft == resource.RLIM_INFINITY:
        return Budget(configured, BACKLOG)
    backlog = max(4, min(BACKLOG, soft // 16))
    return Budget(max(1, min(configured, soft // 2 - 2 * backlog)), backlog)


@dataclass(eq=False)
class _Connection:
    transport: asyncio.Transport
    busy: bool = False
    """A request is being handled (its head arrived)."""
    head_deadline: asyncio.TimerHandle | None = field(default=None, repr=False)


class ConnectionGuard:
    """Tracks a site's connections: admits at most ``limit``, closes those too slow with a request head."""

    def __init__(self, *, max_connections: int, header_timeout: float) -> None:
        self.budget = budget(max_connections)
        self.limit = self.budget.connections
        self.header_timeout = header_timeout
        self._open: dict[asyncio.BaseTransport, _Connection] = {}  # oldest first

    def protocol(self, inner: asyncio.Protocol) -> asyncio.Protocol:
        return _Guarded(self, inner)

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """The request head is complete once aiohttp routes it: its deadline no longer applies."""
        connection = self._open.get(request.transport) if request.transport is not None else None
        if connection is None:  # a site without a guard (tests, the playground)
            return await handler(request)
        connection.busy = True
        _cancel(connection)
        try:
            return await handler(request)
        finally:
            connection.busy = False

    def _admit(self, transport: asyncio.Transport) -> bool:
        if len(self._open) >= self.limit:
            idle = next((c for c in self._open.values() if not c.busy), None)
            if idle is None:
                log.warning(
                    "refused a connection: all %d are serving requests (HTTP_MAX_CONNECTIONS)", self.limit
                )
                return False
            log.warning(
                "at %d connections (HTTP_MAX_CONNECTIONS): closed the oldest one not being served", self.limit
            )
            self._close(idle)
        self._open[transport] = _Connection(transport)
        return True

    def _data(self, transport: asyncio.BaseTransport) -> None:
        connection = self._open.get(transport)
        if connection is not None and not connection.busy and connection.head_deadline is None:
            loop = asyncio.get_running_loop()
            connection.head_deadline = loop.call_later(self.header_timeout, self._expire, connection)

    def _expire(self, connection: _Connection) -> None:
        connection.head_deadline = None
        if not connection.busy and self._open.get(connection.transport) is connection:
            log.warning(
                "closed a connection that took over %g s to send a request head (HTTP_HEADER_TIMEOUT)",
                self.header_timeout,
            )
            self._close(connection)

    def _close(self, connection: _Connection) -> None:
        self._forget(connection.transport)
        connection.transport.abort()

    def _forget(self, transport: asyncio.BaseTransport) -> None:
        connection = self._open.pop(transport, None)
        if connection is not None:
            _cancel(connection)


def _cancel(connection: _Connection) -> None:
    if connection.head_deadline is not None:
        connection.head_deadline.cancel()
        connection.head_deadline = None


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, seen by the guard first."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if not self._guard._admit(transport):
            transport.abort()
            return
        self._transport = transport
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._transport is not None:
            self._guard._data(self._transport)
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._transport is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._guard._forget(self._transport)
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class GuardedSite(web.BaseSite):
    """A TCP site whose every connection goes through a ``ConnectionGuard``."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str | None,
        port: int,
        *,
        guard: ConnectionGuard,
        backlog: int = BACKLOG,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self._guard = guard

    @property
    def name(self) -> str:
        return str(URL.build(scheme="http", host=self._host or "0.0.0.0", port=self._port))

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            lambda: self._guard.protocol(server()), self._host, self._port, backlog=self._backlog
        )


async def start(
    app: web.Application, settings: Settings, *, host: str | None = None, limit_logs: bool = True
) -> web.AppRunner:
    """Serve ``app`` on ``settings.port`` with the limits above; ``cleanup()`` the runner to stop.

    ``limit_logs=False`` leaves the process's loggers alone (tests that read the log)."""
    if limit_logs:
        limit_log_floods()
    guard = ConnectionGuard(
        max_connections=settings.http_max_connections, header_timeout=settings.http_header_timeout
    )
    app.middlewares.append(guard.middleware)
    # keepalive_timeout closes a connection idle between requests, and one
    # that connects and never sends a byte.
    # shutdown_timeout: requests still in flight at SIGTERM get this long (aiohttp's default is 60 s,
    # past the 30 s Heroku allows from SIGTERM to SIGKILL).
    runner = web.AppRunner(
        app, keepalive_timeout=settings.http_keepalive_timeout, shutdown_timeout=HTTP_DRAIN
    )
    await runner.setup()
    try:
        await GuardedSite(runner, host, settings.port, guard=guard, backlog=guard.budget.backlog).start()
    except BaseException:
        await runner.cleanup()
        raise
    log.info("serving on port %d, at most %d connections", settings.port, guard.limit)
    return runner


HTTP_DRAIN = 5.0
"""Seconds a stopping worker lets HTTP requests in flight finish; its jobs then get ``web.JOB_DRAIN``:
together well inside the 25 s a worker has to exit after SIGTERM."""


async def serve(
    app: web.Application, settings: Settings, *, on_hangup: Callable[[], None] | None = None
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM: stop listening, finish or give back what is in
    flight, close the connections, return (``serve`` exits 0). SIGHUP calls ``on_hangup``
    (the worker reloads its policy)."""
    runner = await start(app, settings)
    try:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        if on_hangup is not None:
            loop.add_signal_handler(signal.SIGHUP, on_hangup)
        await stop.wait()
    finally:
        await runner.cleanup()
