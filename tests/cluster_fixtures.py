"""Fixtures of the Redis deployments in ``tests.fakes.redis_cluster`` (imported by ``conftest``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from bot.redis_client import RedisClient, connect
from tests.fakes.redis_cluster import Cluster, OneNodeCluster, ReplicatedPair, SentinelSetup

STANDALONE, CLUSTER, THREE_PRIMARIES = "standalone", "cluster", "cluster3"
ON_BOTH = pytest.mark.parametrize("redis_target", [STANDALONE, CLUSTER, THREE_PRIMARIES], indirect=True)
"""Runs a test against the standalone server, the 1-node cluster (where every cross-slot access
fails) and the 3-primary cluster (a request's commands and wake-ups go to the node of its shard):
its agents, workers and ``redis`` client all use the one chosen (``conftest.redis_target``)."""


@pytest.fixture(scope="session")
def one_node_cluster() -> Iterator[OneNodeCluster]:
    node = OneNodeCluster()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def shared_cluster() -> Iterator[Cluster]:
    """3 primaries with a replica each, shared by the tests that never stop a node."""
    nodes = Cluster(primaries=3, replicas=1)
    yield nodes
    nodes.stop()


@pytest.fixture
async def cluster_redis(one_node_cluster: OneNodeCluster) -> AsyncIterator[RedisClient]:
    """A client of the 1-node cluster, emptied first: cross-slot access fails on it."""
    client = connect(one_node_cluster.url, name="tests")
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture(params=["standalone", "cluster"])
def redis_or_cluster(request: pytest.FixtureRequest) -> RedisClient:
    """The test's standalone ``redis``, then the 1-node cluster: for code whose keys share a slot."""
    client: RedisClient = request.getfixturevalue(
        "redis" if request.param == "standalone" else "cluster_redis"
    )
    return client


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """3 primaries with a replica each; per test, as a failover test may kill nodes."""
    nodes = Cluster(primaries=3, replicas=1)
    yield nodes
    nodes.stop()


@pytest.fixture
def replicated_pair() -> Iterator[ReplicatedPair]:
    """A primary and its replica; per test, as a test pauses the replica."""
    pair = ReplicatedPair()
    yield pair
    pair.stop()


@pytest.fixture
def sentinels() -> Iterator[SentinelSetup]:
    """A primary, a replica and 3 Sentinels; per test, as a failover test kills the primary."""
    setup = SentinelSetup()
    yield setup
    setup.stop()
