"""Redis deployments of several processes for the tests: clusters and a Sentinel-watched primary.

Each runs real ``redis-server`` processes on free loopback ports in its own temp dir;
every wait is bounded, and ``stop()`` kills what it started and removes the dir.
"""

from __future__ import annotations

import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.fakes.redis_server import INSTALL_HINT, free_port

READY_TIMEOUT = 30.0
"""Seconds a deployment may take to form (a cluster's gossip, a Sentinel's discovery)."""


START_ATTEMPTS = 5
"""Ports tried for one server before giving up."""


class Processes:
    """``redis-server`` processes in one temp dir, each on its own port."""

    def __init__(self, name: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(INSTALL_HINT)
        self.binary = binary
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        self.by_port: dict[int, subprocess.Popen[bytes]] = {}
        self._commands: dict[int, list[str]] = {}

    def start(self, *args: str, config: str = "") -> int:
        """A server on a new port, with ``args`` (and a config file holding ``config``).

        A port is free when chosen, but another test's server or a client's ephemeral port
        can take it before this server binds it: the server then exits (or another answers
        there), and a new port is tried."""
        for _ in range(START_ATTEMPTS):
            port = cluster_port() if "--cluster-enabled" in args else free_port()
            home = self.workdir / str(port)
            home.mkdir()
            command = [self.binary]
            if config:  # Sentinel rewrites its config file, so it must have one
                (home / "redis.conf").write_text(config)
                command.append(str(home / "redis.conf"))
            command += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(home), "--save", ""]
            command += ["--daemonize", "no", "--logfile", str(home / "redis.log"), *args]
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_until(
                lambda p=process, n=port: p.poll() is not None or _serves(n, p.pid),
                f"redis-server on port {port} did not start (see {home})",
            )
            if process.poll() is None:
                self.by_port[port] = process
                self._commands[port] = command
                return port
        raise RuntimeError(f"redis-server did not start in {START_ATTEMPTS} tries (see {self.workdir})")

    @contextmanager
    def forming(self) -> Iterator[None]:
        """Stop what was started if the deployment does not form: a failed fixture leaves nothing."""
        try:
            yield
        except BaseException:
            self.stop()
            raise

    def kill(self, port: int) -> None:
        """SIGKILL one server: a crash, with nothing flushed or handed over."""
        process = self.by_port.pop(port)
        process.kill()
        process.wait(timeout=10)

    def restart(self, port: int) -> None:
        """Start a killed server again, on its port with its data dir (a cluster node rejoins)."""
        process = subprocess.Popen(self._commands[port], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: _serves(port, process.pid), f"redis-server on port {port} did not restart")
        self.by_port[port] = process

    def pause(self, port: int) -> None:
        """SIGSTOP one server: it holds its connections and answers nothing (a replica then lags)."""
        self.by_port[port].send_signal(signal.SIGSTOP)

    def resume(self, port: int) -> None:
        self.by_port[port].send_signal(signal.SIGCONT)

    def stop(self) -> None:
        for process in self.by_port.values():
            process.send_signal(signal.SIGCONT)  # a paused one dies only once it runs again
            process.kill()
        for process in self.by_port.values():
            process.wait(timeout=10)
        self.by_port.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too, so at most 55535."""
    for _ in range(100):
        port = random.randint(20000, 55535)
        try:
            with socket.socket() as data, socket.socket() as bus:
                data.bind(("127.0.0.1", port))
                bus.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def client(port: int) -> redis.Redis:
    """A plain client of one process, to set up and inspect it."""
    return redis.Redis(port=port, socket_timeout=5, decode_responses=True)


def wait_until(ready: Callable[[], bool], failure: str, timeout: float = READY_TIMEOUT) -> None:
    until = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > until:
            raise RuntimeError(failure)
        time.sleep(0.05)


def _serves(port: int, pid: int) -> bool:
    """Whether the process ``pid`` answers on ``port`` (not another server that took the port)."""
    try:
        with client(port) as node:
            return int(node.info("server")["process_id"]) == pid
    except redis.RedisError:
        return False


def _cluster_ok(port: int) -> bool:
    with client(port) as node:
        return node.cluster("INFO")["cluster_state"] == "ok"


class OneNodeCluster:
    """One ``redis-server --cluster-enabled yes`` holding all 16384 slots.

    Under ``#!lua`` such a node refuses any script that touches keys of two slots, as a
    real cluster would, while a standalone server lets it pass."""

    def __init__(self) -> None:
        self.processes = Processes("cluster1")
        with self.processes.forming():
            self.port = self.processes.start(
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"
            )
            with client(self.port) as node:
                node.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            wait_until(lambda: _cluster_ok(self.port), "the 1-node cluster did not reach cluster_state:ok")

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.processes.stop()


class Cluster:
    """``primaries`` primaries with ``replicas`` replicas each, made by ``redis-cli --cluster create``."""

    def __init__(self, primaries: int = 3, replicas: int = 1) -> None:
        self.processes = Processes("cluster")
        args = (
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "2000",
        )
        with self.processes.forming():
            self.ports = [self.processes.start(*args) for _ in range(primaries * (1 + replicas))]
            create = ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports)]
            create += ["--cluster-replicas", str(replicas), "--cluster-yes"]
            subprocess.run(create, check=True, timeout=READY_TIMEOUT, capture_output=True)
            wait_until(self._formed, "the cluster did not form (cluster_state:ok, every replica in sync)")

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}/0"

    def primaries(self) -> list[int]:
        """Ports of the live primaries."""
        return [port for port in self.processes.by_port if _role(port) == "master"]

    def _formed(self) -> bool:
        if not all(_cluster_ok(port) for port in self.processes.by_port):
            return False
        return all(_role(port) == "master" or _synced(port) for port in self.processes.by_port)

    def stop(self) -> None:
        self.processes.stop()


class ReplicatedPair:
    """A primary and one replica of it, no Sentinel: for what replication alone decides."""

    def __init__(self) -> None:
        self.processes = Processes("pair")
        with self.processes.forming():
            self.primary = self.processes.start()
            self.replica = self.processes.start("--replicaof", "127.0.0.1", str(self.primary))
            wait_until(lambda: _synced(self.replica), "the replica did not sync")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.primary}/0"

    def stop(self) -> None:
        self.processes.stop()


class SentinelSetup:
    """A primary, one replica and three Sentinels monitoring them as ``MASTER``."""

    MASTER = "approvals"

    def __init__(self) -> None:
        self.processes = Processes("sentinel")
        with self.processes.forming():
            self.primary = self.processes.start()
            self.replica = self.processes.start("--replicaof", "127.0.0.1", str(self.primary))
            wait_until(lambda: _synced(self.replica), "the replica did not sync")
            config = (
                f"sentinel monitor {self.MASTER} 127.0.0.1 {self.primary} 2\n"
                f"sentinel down-after-milliseconds {self.MASTER} 1000\n"
                f"sentinel failover-timeout {self.MASTER} 10000\n"
            )
            self.sentinels = [self.processes.start("--sentinel", config=config) for _ in range(3)]
            wait_until(self._acquainted, "the Sentinels did not find each other and the replica")

    @property
    def addresses(self) -> tuple[tuple[str, int], ...]:
        return tuple(("127.0.0.1", port) for port in self.sentinels)

    def master(self) -> int:
        """The port the Sentinels name as the primary now."""
        with client(self.sentinels[0]) as sentinel:
            return int(sentinel.sentinel_get_master_addr_by_name(self.MASTER)[1])

    def _acquainted(self) -> bool:
        for port in self.sentinels:
            with client(port) as sentinel:
                known = sentinel.sentinel_master(self.MASTER)
                if int(known["num-other-sentinels"]) < 2 or int(known["num-slaves"]) < 1:
                    return False
        return True

    def stop(self) -> None:
        self.processes.stop()


def _role(port: int) -> str:
    with client(port) as node:
        return str(node.info("replication")["role"])


def _synced(port: int) -> bool:
    with client(port) as node:
        info = node.info("replication")
        return info["role"] == "slave" and info.get("master_link_status") == "up"
