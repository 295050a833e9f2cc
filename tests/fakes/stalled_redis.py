"""A "Redis" that accepts connections and never answers.

The failure that lets a tool run: TCP connects at once (the kernel completes
the handshake), every command is read and nothing ever comes back, as with a
Redis frozen by a stuck fsync, a paused VM or a proxy whose backend is gone.
A client without read timeouts waits forever, and a hook stuck like that
exceeds its ``timeout``, after which Claude Code runs the tool anyway.
"""

from __future__ import annotations

import selectors
import socket
import threading
from typing import Self


class StalledRedis:
    """A TCP server on 127.0.0.1 that reads everything and writes nothing.

    It runs in its own thread, so it stalls clients in this process and in
    child processes alike. ``connections`` counts the accepted connections:
    a test can check that its client really got through and then hung,
    rather than being refused.
    """

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self.connections = 0
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._stop_r, self._stop_w = socket.socketpair()
        self._selector.register(self._stop_r, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._serve, name="stalled-redis", daemon=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> StalledRedis:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop_w.send(b"x")
        self._thread.join(timeout=10)
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()
        self._stop_w.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _serve(self) -> None:
        while True:
            for key, _events in self._selector.select():
                sock = key.fileobj
                if sock is self._stop_r:
                    return
                if sock is self._listener:
                    try:
                        conn, _addr = self._listener.accept()
                    except BlockingIOError:
                        continue
                    conn.setblocking(False)
                    self._selector.register(conn, selectors.EVENT_READ)
                    self.connections += 1
                    continue
                try:
                    # Read and drop, so a client's writes never block: it is
                    # the missing answer that must stop it, not a full buffer.
                    data = sock.recv(65536)  # type: ignore[union-attr]
                except OSError:
                    data = b""
                if not data:  # the client gave up and closed
                    self._selector.unregister(sock)
                    sock.close()  # type: ignore[union-attr]
