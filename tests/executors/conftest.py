"""One two-node Ray cluster for the whole session (swarm.testing.ray): the head, and a second node
with the custom resource `node2`. Agents of `remote_agents` import on its workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[object]:
    pytest.importorskip("ray")
    from swarm.testing.ray import TemporaryRayCluster

    paths = [HERE, ROOT, ROOT / "examples"]
    with TemporaryRayCluster(nodes=2, path=paths, client=True) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def ray_connected(ray_cluster: object) -> Iterator[object]:
    """This process connected to the cluster once; each test's `RayExecutor` uses that."""
    import logging

    import ray

    ray.init(address=ray_cluster.address, log_to_driver=False, logging_level=logging.WARNING)  # type: ignore[attr-defined]
    try:
        yield ray_cluster
    finally:
        ray.shutdown()
