"""`swarm serve` itself, as a user starts it: the bank's agents, its real learned router (trained
into storage/models/bank on first use, as `swarm demo bank` does) and a SQLite file, in a
subprocess; then a request through it, its events, its neighbours, feedback and Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from swarm.paths import DEFAULT_MODELS_DIR
from swarm.trace import TraceStore
from tests.serve.conftest import sse_events, wait_done


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def bank_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    models = os.environ.get("SWARM_MODELS_DIR", DEFAULT_MODELS_DIR)
    env = {
        **os.environ,
        "SWARM_BANK_DB": f"sqlite:///{tmp_path / 'sandbox.db'}",
        "SWARM_API_TOKEN": "t0ken",
    }
    log = (tmp_path / "serve.log").open("w+")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("swarm")), "serve", "--agents", "swarm_examples.bank"]
        + ["--port", str(port), "--db", f"sqlite:///{tmp_path / 'swarm.db'}"]
        + ["--models-dir", models, "--log-level", "warning"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600  # a first run trains the bank's router (minutes)
    try:
        while True:
            try:
                if httpx.get(f"{url}/v1/auth", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, Path(log.name).read_text()
            assert time.monotonic() < deadline, "swarm serve did not start"
            time.sleep(0.2)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


@pytest.mark.slow
def test_the_bank_behind_swarm_serve(
    bank_server: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    url, proc = bank_server
    headers = {"Authorization": "Bearer t0ken"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        assert client.get("/v1/auth").json() == {"required": True}
        agents = {a["name"] for a in client.get("/v1/agents").json()["agents"]}
        assert {"cards", "transfers", "disputes"} <= agents

        task_id = client.post("/v1/tasks", json={"text": "I lost my card ending 4821"}).json()["id"]
        with client.stream("GET", f"/v1/tasks/{task_id}/events") as response:
            events = list(sse_events(response))
        assert events[-1][0] == "done" and events[-1][1]["data"]["status"] == "done"

        task = wait_done(client, task_id)
        decision = task["decision"]
        assert decision["agent"] in ("cards", "security") and decision["status"] == "routed"
        versions = client.get("/v1/router/versions").json()
        assert decision["router_version"] == versions["routing"] == versions["serving"]
        assert versions["routing"] in [v["version"] for v in versions["versions"]]
        neighbours = decision["neighbours"]
        assert len(neighbours) == 5 and neighbours[0]["similarity"] > 0.5
        assert any("card" in n["text"].lower() for n in neighbours)

        stored = client.post(f"/v1/tasks/{task_id}/feedback", json={"verdict": "good"})
        assert stored.status_code == 201
        metrics = client.get("/v1/router/metrics").json()
        assert metrics["n"] == 1 and metrics["accuracy"] == 1.0

    proc.send_signal(signal.SIGINT)  # Ctrl-C: the server stops, the swarm closes, exit 0
    assert proc.wait(timeout=60) == 0
    with TraceStore(f"sqlite:///{tmp_path / 'swarm.db'}") as store:
        (run,) = store.runs()
        assert run["kind"] == "serve" and run["finished_at"] is not None
        assert store.task(task_id)["status"] == "done"
