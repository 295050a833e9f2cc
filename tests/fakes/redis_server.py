"""A private redis-server for the test session, on a free port in a temp dir."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

INSTALL_HINT = "redis-server is not installed: apt-get install redis-server (Debian/Ubuntu) or brew install redis"


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

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.workdir),
                "--save", "",
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--daemonize", "no",
                "--logfile", str(self.workdir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait(up=True)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
        self._wait(up=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _wait(self, up: bool, timeout: float = 10) -> None:
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    answered = conn.recv(16).startswith(b"+PONG")
            except OSError:
                answered = False
            if answered == up:
                return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server on port {self.port} did not {'start' if up else 'stop'}")
