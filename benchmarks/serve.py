"""`swarm serve` under load on loopback: the bank's thirteen agents behind the HTTP API, with the
keyword router (`--router keyword`: no model, so the figures are the server's, not the encoder's).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/serve.py [--submits 1000] [--clients 50]

The server is a real `swarm serve` subprocess (uvicorn, one event loop, a SQLite trace store in a
temp folder); the clients are httpx.AsyncClient connections in this process, so client and server
each have a core. Measured, in one run:

1. `--submits` POST /v1/tasks from `--clients` concurrent clients: requests/s and latency
   percentiles of the submits (the agents run meanwhile, on the server's event loop), the CPU
   seconds server and clients spent, and how many tasks were done by the last answer.
2. On a fresh server, `--streams` event streams (GET /v1/events) open at once: the server's RSS
   growth per stream, and how long one task's `done` takes to reach all of them.
3. The overhead of a request: one client, one task at a time, submit -> `done` over the API
   (POST, then the task's event stream) against `await Swarm.run` in this process with the same
   agents, router and a SQLite store, `--sequential` tasks each: wall time, and CPU time per
   task (the server process's, against this process's), which the machine's load moves less.

Prints a summary to stderr and one JSON object as the last line of stdout.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import psutil  # noqa: E402

from swarm import Swarm  # noqa: E402
from swarm.agents import AgentRegistry  # noqa: E402
from swarm.router.keyword import KeywordRouter  # noqa: E402
from swarm.scenarios.metrics import percentile  # noqa: E402
from swarm_examples import bank  # noqa: E402


def texts_of(registry: AgentRegistry) -> list[str]:
    """The agents' own examples: requests each desk answers (some act on the sandbox bank)."""
    return [t for a in registry for t in a.examples]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "SWARM_BANK_DB": f"sqlite:///{folder / 'bank.db'}",
        "SWARM_API_TOKEN": "",
    }
    swarm_cmd = str(Path(sys.executable).with_name("swarm"))
    proc = subprocess.Popen(
        [swarm_cmd, "serve", "--agents", "swarm_examples.bank", "--router", "keyword"]
        + ["--port", str(port), "--db", f"sqlite:///{folder / 'swarm.db'}"]
        + ["--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/v1/auth", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("swarm serve did not start")
        time.sleep(0.1)


def cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


async def submits(
    url: str, server: psutil.Process, texts: list[str], n: int, clients: int
) -> dict[str, Any]:
    latencies: list[float] = []
    ids: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        await client.get("/v1/agents")  # one warm-up request

        async def one_client(k: int) -> None:
            for i in range(k, n, clients):
                t0 = time.perf_counter()
                answer = await client.post("/v1/tasks", json={"text": texts[i % len(texts)]})
                latencies.append(time.perf_counter() - t0)
                answer.raise_for_status()
                ids.append(answer.json()["id"])

        cpu0, client0 = cpu_s(server), time.process_time()
        start = time.perf_counter()
        await asyncio.gather(*(one_client(k) for k in range(clients)))
        submitted = time.perf_counter() - start
        server_cpu, client_cpu = cpu_s(server) - cpu0, time.process_time() - client0
        done = await client.get("/v1/tasks", params={"status": "done", "limit": 1000})
    ms = [x * 1000 for x in latencies]
    return {
        "submits": n,
        "clients": clients,
        "requests_per_s": round(n / submitted, 1),
        "latency_ms_p50": round(percentile(ms, 50), 2),
        "latency_ms_p95": round(percentile(ms, 95), 2),
        "latency_ms_max": round(max(ms), 2),
        "seconds": round(submitted, 2),
        "server_cpu_s": round(server_cpu, 2),
        "server_cpu_ms_per_task": round(server_cpu / n * 1000, 2),
        "client_cpu_s": round(client_cpu, 2),
        "done_by_then": len(done.json()["tasks"]),
        "distinct_ids": len(set(ids)),
    }


async def streams(url: str, proc: psutil.Process, n: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        await client.get("/v1/agents")
        await asyncio.sleep(0.5)
        before = proc.memory_info().rss
        opened = asyncio.Event()
        ready = 0
        arrived: list[float] = []
        submitted_at = 0.0

        async def listen() -> None:
            nonlocal ready
            async with client.stream("GET", "/v1/events") as response:
                ready += 1
                if ready == n:
                    opened.set()
                async for line in response.aiter_lines():
                    if line == "event: done":
                        arrived.append(time.perf_counter() - submitted_at)
                        return

        listeners = [asyncio.create_task(listen()) for _ in range(n)]
        await asyncio.wait_for(opened.wait(), 60)
        await asyncio.sleep(0.5)
        after = proc.memory_info().rss
        submitted_at = time.perf_counter()
        await client.post("/v1/tasks", json={"text": "what are your fees for transfers"})
        await asyncio.wait_for(asyncio.gather(*listeners), 60)
    return {
        "streams": n,
        "server_rss_before_mb": round(before / 2**20, 1),
        "server_rss_with_streams_mb": round(after / 2**20, 1),
        "kb_per_stream": round((after - before) / n / 1024, 1),
        "done_reached_all_streams_ms": round(max(arrived) * 1000, 1),
    }


async def sequential_api(
    url: str, server: psutil.Process, texts: list[str], n: int
) -> tuple[list[float], float]:
    times = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await client.get("/v1/agents")
        cpu0 = cpu_s(server)
        for i in range(n):
            t0 = time.perf_counter()
            task_id = (await client.post("/v1/tasks", json={"text": texts[i % len(texts)]})).json()[
                "id"
            ]
            async with client.stream("GET", f"/v1/tasks/{task_id}/events") as response:
                async for line in response.aiter_lines():
                    if line == "event: done":
                        break
            times.append(time.perf_counter() - t0)
        return times, cpu_s(server) - cpu0


async def sequential_in_process(
    folder: Path, texts: list[str], n: int
) -> tuple[list[float], float]:
    registry = AgentRegistry()
    registry.add_pack(bank.PACK)
    services = bank.sandbox({})
    times = []
    try:
        async with Swarm(
            registry,
            router=KeywordRouter(registry),
            db=f"sqlite:///{folder / 'in_process.db'}",
            services=services,
        ) as swarm:
            await swarm.run(texts[0])
            cpu0 = time.process_time()
            for i in range(n):
                t0 = time.perf_counter()
                await swarm.run(texts[i % len(texts)])
                times.append(time.perf_counter() - t0)
            cpu = time.process_time() - cpu0
    finally:
        bank.teardown(services)
    return times, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--submits", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--sequential", type=int, default=200)
    args = parser.parse_args()
    registry = AgentRegistry()
    registry.add_pack(bank.PACK)
    texts = texts_of(registry)
    load_average = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="swarm_serve_bench_") as tmp:
        folder = Path(tmp)
        # One server for the load (it is left with a backlog of bank work: killed after), a
        # fresh one for the streams and the one-at-a-time figures.
        proc, url = start_server(folder / "a")
        try:
            load = asyncio.run(
                submits(url, psutil.Process(proc.pid), texts, args.submits, args.clients)
            )
        finally:
            proc.kill()
            proc.wait(timeout=60)
        proc, url = start_server(folder / "b")
        try:
            server = psutil.Process(proc.pid)
            fan_out = asyncio.run(streams(url, server, args.streams))
            api, api_cpu = asyncio.run(sequential_api(url, server, texts, args.sequential))
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        local, local_cpu = asyncio.run(sequential_in_process(folder, texts, args.sequential))
    api_ms = statistics.median(api) * 1000
    local_ms = statistics.median(local) * 1000
    n = args.sequential
    result = {
        "router": "keyword",
        "load": load,
        "streams": fan_out,
        "one_at_a_time": {
            "tasks": n,
            "api_submit_to_done_ms_p50": round(api_ms, 2),
            "api_submit_to_done_ms_p95": round(percentile([t * 1000 for t in api], 95), 2),
            "in_process_run_ms_p50": round(local_ms, 2),
            "in_process_run_ms_p95": round(percentile([t * 1000 for t in local], 95), 2),
            "overhead_ms_p50": round(api_ms - local_ms, 2),
            "server_cpu_ms_per_task": round(api_cpu / n * 1000, 2),
            "in_process_cpu_ms_per_task": round(local_cpu / n * 1000, 2),
            "overhead_cpu_ms_per_task": round((api_cpu - local_cpu) / n * 1000, 2),
        },
        "load_average_at_start": [round(x, 1) for x in load_average],
        "cpus": os.cpu_count(),
        "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
    }
    print(json.dumps(result, indent=2), file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
