"""A throwaway Ray cluster on this machine for tests and benchmarks: a head node and, optionally,
more nodes, each its own `ray start` in its own process group, on loopback ports, in a temporary
folder; `kill_node` takes one down as a crash would, `stop` ends them all.

    with TemporaryRayCluster(nodes=2, path=["tests/executors"]) as cluster:
        executor = RayExecutor(cluster.address)
        cluster.kill_node(1)                      # the second node dies, its actors with it

Node `i` > 0 has the custom resource `node{i+1}` (4 units), so work can be pinned to it. Needs
the `ray` extra. Never calls `ray stop` (that would stop every Ray cluster of this user).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["RayNode", "TemporaryRayCluster"]

# Quick failure detection: a killed node is declared dead in about 1.5 s instead of ~30 s.
FAST_FAILURE_DETECTION = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 500,
    "health_check_timeout_ms": 500,
    "health_check_failure_threshold": 3,
}


LOOPBACK_ENV = {"RAY_AUTH_MODE": "disabled"}
"""Loopback only, so no token: else Ray reads and writes ~/.ray/auth_token, shared by every
cluster of this user. Set in the nodes' environment and, while the cluster runs, in this
process's (a driver must use the same mode)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RayNode:
    """One `ray start` process group: `pgid`, its `resources`, and (once known) its `node_id`."""

    def __init__(self, index: int, pgid: int, resources: dict[str, float]) -> None:
        self.index = index
        self.pgid = pgid
        self.resources = resources
        self.node_id: str | None = None
        self.alive = True


class TemporaryRayCluster:
    """`nodes` Ray nodes on 127.0.0.1 with `num_cpus` CPUs each, for as long as the `with` lasts.

    `client`: also serve Ray Client on the head (`client_address`, "ray://127.0.0.1:PORT"; needs
    `ray[client]`). `path`: folders put on the workers' PYTHONPATH (besides this process's), so
    that agents defined in test modules import there. `address` is the GCS address to
    give `ray.init` or `RayExecutor`. Raises `RuntimeError` with the command's output when a
    node does not start.
    """

    def __init__(
        self,
        nodes: int = 1,
        *,
        num_cpus: int = 1,
        object_store_memory: int = 200_000_000,
        path: Sequence[str | Path] = (),
        env: dict[str, str] | None = None,
        client: bool = False,
    ) -> None:
        self.n = nodes
        self.num_cpus = num_cpus
        self.object_store_memory = object_store_memory
        # Short: Ray puts unix sockets under it, and their paths may not exceed 107 bytes.
        self.folder = Path(tempfile.mkdtemp(prefix="swr", dir="/tmp"))
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.client_port = _free_port() if client else None
        self.nodes: list[RayNode] = []
        self._saved_env: dict[str, str | None] = {}
        python_path = [str(Path(p).resolve()) for p in path]
        python_path += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        python_path += [p for p in sys.path if p and "site-packages" not in p]
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(dict.fromkeys(python_path)),
            "RAY_USAGE_STATS_ENABLED": "0",
            **LOOPBACK_ENV,
            **(env or {}),
        }

    @property
    def client_address(self) -> str:
        if self.client_port is None:
            raise RuntimeError(
                "this cluster serves no Ray Client: TemporaryRayCluster(client=True)"
            )
        return f"ray://127.0.0.1:{self.client_port}"

    def __enter__(self) -> TemporaryRayCluster:
        self._saved_env = {k: os.environ.get(k) for k in LOOPBACK_ENV}
        os.environ.update(LOOPBACK_ENV)
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def start(self) -> None:
        for _ in range(self.n):
            self.add_node()
        self._learn_node_ids()

    def add_node(self) -> RayNode:
        """Start one more node (the head first); its custom resource is `node{i+1}`."""
        i = len(self.nodes)
        resources = {} if i == 0 else {f"node{i + 1}": 4.0}
        ray = str(Path(sys.executable).with_name("ray"))
        args = [
            ray, "start", "--node-ip-address=127.0.0.1", f"--num-cpus={self.num_cpus}",
            f"--object-store-memory={self.object_store_memory}", "--disable-usage-stats",
            f"--dashboard-agent-listen-port={_free_port()}",
            f"--metrics-export-port={_free_port()}", f"--runtime-env-agent-port={_free_port()}",
            f"--resources={json.dumps(resources)}",
        ]  # fmt: skip
        if i == 0:
            args += [
                "--head", f"--port={self.port}", f"--temp-dir={self.folder}",
                "--include-dashboard=false", f"--dashboard-port={_free_port()}",
                f"--system-config={json.dumps(FAST_FAILURE_DETECTION)}",
            ]  # fmt: skip
            if self.client_port is not None:
                args.append(f"--ray-client-server-port={self.client_port}")
        else:
            args.append(f"--address={self.address}")
        log_path = self.folder / f"start-{i}.log"
        with open(log_path, "w") as log:
            # A session of its own: `ray start` exits once its daemons run, and they (GCS,
            # raylet, agents) keep its process group, whose id is the pid it had. The workers a
            # raylet starts make sessions of their own: `kill_node` finds them as its children.
            proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
            code = proc.wait(timeout=120)
        node = RayNode(i, proc.pid, resources)
        self.nodes.append(node)
        if code != 0:
            raise RuntimeError(f"ray start (node {i}) failed:\n{log_path.read_text()[-3000:]}")
        return node

    def _learn_node_ids(self) -> None:
        """Each node's id, from the GCS: the head has no custom resource, the others theirs."""
        # Then one task on each node, placed by a hard node affinity: once that ran, every node
        # is schedulable (a soft affinity to a node that just joined may spill elsewhere).
        script = (
            "import json, ray\n"
            "from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as At\n"
            f"ray.init(address={self.address!r}, logging_level='ERROR', log_to_driver=False)\n"
            "nodes = [[n['NodeID'], n['Resources']] for n in ray.nodes() if n['Alive']]\n"
            "probe = ray.remote(num_cpus=0)(lambda: ray.get_runtime_context().get_node_id())\n"
            "placed = [probe.options(scheduling_strategy=At(n, soft=False)).remote()"
            " for n, _ in nodes]\n"
            "assert ray.get(placed, timeout=60) == [n for n, _ in nodes]\n"
            "print(json.dumps(nodes))\n"
        )
        deadline = time.monotonic() + 60
        while True:
            done = subprocess.run(
                [sys.executable, "-c", script], capture_output=True, text=True,
                env=self.env, timeout=120,
            )  # fmt: skip
            seen = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else []
            if len(seen) >= len(self.nodes) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        for node_id, resources in seen:
            custom = [int(k[4:]) - 1 for k in resources if k[:4] == "node" and k[4:].isdigit()]
            index = custom[0] if custom else 0
            if index < len(self.nodes):
                self.nodes[index].node_id = node_id
        if any(n.node_id is None for n in self.nodes):
            raise RuntimeError(f"not every Ray node registered: {seen} ({done.stderr[-2000:]})")

    def kill_node(self, index: int) -> None:
        """SIGKILL node `index`: its process group (raylet, agents) and the workers its raylet
        started (each in a session of its own)."""
        node = self.nodes[index]
        for pid in _children_of(_members(node.pgid)):
            _kill(pid)
        _killpg(node.pgid)
        node.alive = False

    def stop(self) -> None:
        """Kill every node (the head last) and remove the temporary folder."""
        for node in reversed(self.nodes):
            if node.alive:
                for pid in _children_of(_members(node.pgid)):
                    _kill(pid)
                _killpg(node.pgid)
                node.alive = False
        shutil.rmtree(self.folder, ignore_errors=True)


def _processes() -> list[tuple[int, int, int]]:
    """(pid, ppid, pgid) of every process this user can see (Linux /proc)."""
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out.append((int(proc.name), int(fields[1]), int(fields[2])))
    return out


def _members(pgid: int) -> set[int]:
    return {pid for pid, _, group in _processes() if group == pgid}


def _children_of(parents: set[int]) -> set[int]:
    """Processes whose parent is in `parents`, and theirs, outside those groups."""
    found: set[int] = set()
    frontier = set(parents)
    while frontier:
        kids = {pid for pid, ppid, _ in _processes() if ppid in frontier} - parents - found
        found |= kids
        frontier = kids
    return found


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
