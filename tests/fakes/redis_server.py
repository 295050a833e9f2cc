"""A private redis-server for the test session, on a free port in a temp dir."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

INSTALL_HINT = (
    "redis-server is not installed: apt-get install redis-server (Debian/Ubuntu) or brew install redis"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """Starts, stops and restarts a real redis-server with append-only persistence.

    AOF is on so a restart keeps the data, as a production Redis would.
    """

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(INSTALL_HINT)
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *extra_args: str, until_ready: bool = True) -> None:
        """Start the server; ``extra_args`` are more command-line settings.

        ``until_ready=False`` returns as soon as the server answers at all,
        ``-LOADING`` included (it is still reading its data set)."""
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.workdir),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--daemonize",
                "no",
                "--logfile",
                str(self.workdir / "redis.log"),
                *extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait(up=True, loading_counts=not until_ready)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
        self._wait(up=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _wait(self, up: bool, timeout: float = 10, loading_counts: bool = False) -> None:
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    reply = conn.recv(16)
                    answered = reply.startswith(b"+PONG") or (
                        loading_counts and reply.startswith(b"-LOADING")
                    )
            except OSError:
                answered = False
            if answered == up:
                return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server on port {self.port} did not {'start' if up else 'stop'}")


class BlackHoleProxy:
    """A TCP relay to a Redis port that can turn its open connections into black holes.

    ``cut()`` makes every connection open at that moment half-open, as a
    failover that moves an address, a NAT or load balancer dropping its state,
    or a host that vanished without a RST leave them: the client's socket stays
    open, what it sends is lost and no answer or error ever comes back.
    Connections made after the cut are relayed as before.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._open: set[_Relay] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        for relay in self._open:
            relay.cut()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for relay in list(self._open):
            relay.close()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
            handler.add_done_callback(self._handlers.discard)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        relay = _Relay(writer, up_writer)
        self._open.add(relay)
        try:
            await asyncio.gather(relay.pump(reader, up_writer), relay.pump(up_reader, writer))
        finally:
            self._open.discard(relay)
            relay.close()


class _Relay:
    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream
        self.dead = False
        self._closed = asyncio.Event()

    def cut(self) -> None:
        self.dead = True
        self.upstream.close()  # Redis sees the client go; the client sees nothing

    def close(self) -> None:
        self._closed.set()
        self.client.close()
        self.upstream.close()

    async def pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while chunk := await source.read(65536):
                if self.dead:
                    continue  # swallowed: a black hole answers nothing
                sink.write(chunk)
                await sink.drain()
        if self.dead:
            # The upstream side ended because of the cut: keep the client's
            # socket open and silent until the proxy closes.
            await self._closed.wait()


class ReplyLosingProxy:
    """A TCP relay to a Redis port that loses the answer to one command.

    ``lose_reply_to(marker)``: the next request carrying ``marker`` (say a
    script's SHA) reaches Redis and runs, but its answer, and everything after
    it on that connection, never comes back, as when a connection dies just
    after Redis wrote. The client sees its read time out; the write stands.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.lost = 0
        """How many answers were lost so far."""
        self._markers: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def lose_reply_to(self, marker: bytes) -> None:
        self._markers.append(marker)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        silenced = asyncio.Event()

        async def requests() -> None:
            while chunk := await reader.read(65536):
                for marker in list(self._markers):
                    if marker in chunk:
                        self._markers.remove(marker)
                        silenced.set()
                up_writer.write(chunk)
                await up_writer.drain()

        async def answers() -> None:
            while chunk := await up_reader.read(65536):
                if silenced.is_set():
                    self.lost += 1
                    continue
                writer.write(chunk)
                await writer.drain()

        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await asyncio.gather(requests(), answers())
        for w in (writer, up_writer):
            w.close()
            self._writers.discard(w)
