"""A local Redis Cluster for ``python -m bot bench --cluster``: primaries (and replicas) on loopback.

Each node is a ``redis-server --cluster-enabled yes`` with the same persistence as
the single primary the bench compares it with (``processes.redis_server_argv``),
in a directory of its own; ``redis-cli --cluster create`` assigns the slots.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import time
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import RedisError

from .processes import START_TIMEOUT, Child, redis_server_argv, spawn, until_pings

BUS_OFFSET = 10_000
"""A cluster node also listens on its port + 10000 (the cluster bus), so its port is at most 55535."""
PORT_RANGE = (20_000, 65_535 - BUS_OFFSET)


def free_cluster_port() -> int:
    """A loopback port free now, whose bus port (+10000) is free too."""
    for _ in range(100):
        port = random.randint(*PORT_RANGE)
        try:
            with socket.socket() as data, socket.socket() as bus:
                data.bind(("127.0.0.1", port))
                bus.bind(("127.0.0.1", port + BUS_OFFSET))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair (port, port + 10000) for a cluster node")


async def start_cluster(workdir: Path, primaries: int = 3, replicas: int = 0) -> tuple[list[Child], str]:
    """``primaries`` primaries with ``replicas`` replicas each; returns the nodes and a
    ``redis+cluster://`` URL once every node says ``cluster_state:ok`` (and every replica is in sync).

    RuntimeError if it does not form within START_TIMEOUT; the nodes started are then stopped."""
    cli = shutil.which("redis-cli")
    if cli is None:
        raise RuntimeError("redis-cli is not installed (apt-get install redis-tools)")
    nodes: list[Child] = []
    ports: list[int] = []
    try:
        for _ in range(primaries * (1 + replicas)):
            port = free_cluster_port()
            home = workdir / f"node-{port}"
            home.mkdir(parents=True)
            argv = redis_server_argv(
                port, home, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"
            )
            node = await spawn(f"redis-{port}", argv, home)
            nodes.append(node)
            ports.append(port)
            await until_pings(node, port)
        await _create(cli, ports, replicas, workdir)
        await _until_formed(ports)
    except BaseException:
        for node in reversed(nodes):
            await node.stop()
        raise
    return nodes, f"redis+cluster://127.0.0.1:{ports[0]}/0"


async def _create(cli: str, ports: list[int], replicas: int, workdir: Path) -> None:
    log = workdir / "cluster-create.log"
    argv = [cli, "--cluster", "create", *(f"127.0.0.1:{port}" for port in ports)]
    argv += ["--cluster-replicas", str(replicas), "--cluster-yes"]
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
        )
    try:
        async with asyncio.timeout(START_TIMEOUT):
            code = await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise RuntimeError(f"redis-cli --cluster create did not finish within {START_TIMEOUT:.0f}s") from None
    if code != 0:
        raise RuntimeError(
            f"redis-cli --cluster create exited with {code}:\n{log.read_text(errors='replace')}"
        )


async def _until_formed(ports: list[int]) -> None:
    """Until every node reports ``cluster_state:ok`` and every replica's link to its primary is up."""
    until = time.monotonic() + START_TIMEOUT
    while not await _formed(ports):
        if time.monotonic() > until:
            raise RuntimeError(f"the cluster did not reach cluster_state:ok within {START_TIMEOUT:.0f}s")
        await asyncio.sleep(0.05)


async def _formed(ports: list[int]) -> bool:
    for port in ports:
        client = Redis(host="127.0.0.1", port=port, decode_responses=True)
        try:
            state = await client.execute_command("CLUSTER", "INFO")
            replication = await client.info("replication")
        except (RedisError, OSError):
            return False
        finally:
            await client.aclose()
        if _field(state, "cluster_state") != "ok":
            return False
        if replication["role"] != "master" and replication.get("master_link_status") != "up":
            return False
    return True


def _field(info: object, name: str) -> str:
    """One field of CLUSTER INFO, whether redis-py parsed it into a dict or left the text."""
    if isinstance(info, dict):
        return str(info.get(name, ""))
    for line in str(info).splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    return ""
