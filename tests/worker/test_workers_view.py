"""What `swarm workers` says of each lease owner (`TraceStore.workers()`): its state judged from
its pid on this host or its heartbeat from another, the leases it holds now; and its table at 80
and 120 columns, every value whole."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console
from sqlalchemy import insert, update

from swarm.cli.worker import WorkersTable, workers
from swarm.models import new_id
from swarm.trace import TraceStore
from swarm.trace.owner import process_owner
from swarm.trace.schema import TaskRow, WorkerRow


def _gone_pid() -> int:
    """The pid of a process that has exited (a real one, waited for)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _worker(store: TraceStore, name: str, **values: Any) -> str:
    me = process_owner()
    now = time.time()
    row = {"id": f"{name}-{new_id()}", "kind": "worker", "host": me["host"], "pid": me["pid"],
           "agents": "swarm_examples.bank", "started_at": now - 600, "heartbeat_at": now,
           "stopped_at": None, "meta": {"started": me["started"]}}  # fmt: skip
    row.update(values)
    with store.engine.begin() as conn:
        conn.execute(insert(WorkerRow.__table__), row)
    return str(row["id"])


def _lease(store: TraceStore, owner: str, expires_in: float, status: str = "running") -> None:
    task_id = store.enqueue(f"task of {owner}")
    with store.engine.begin() as conn:
        conn.execute(
            update(TaskRow.__table__)
            .where(TaskRow.__table__.c.id == task_id)
            .values(status=status, lease_owner=owner, lease_expires_at=time.time() + expires_in)
        )


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with TraceStore(f"sqlite:///{tmp_path / 'w.db'}", lease=30.0) as s:
        yield s


def test_each_worker_shows_its_true_state_and_the_leases_it_holds_now(store: TraceStore) -> None:
    now = time.time()
    me = process_owner()
    ids = {
        # the issue: killed with -9 six minutes ago on this host, its tasks taken since
        "dead": _worker(store, "dead", pid=_gone_pid(), heartbeat_at=now - 353.9),
        # killed just now: dead at once, though its heartbeat is fresh and its lease unexpired
        "dead_fresh": _worker(store, "fresh", pid=_gone_pid(), heartbeat_at=now - 1),
        # the same pid, another process (another start time): dead
        "reused": _worker(store, "reused", meta={"started": (me["started"] or 0) + 1}),
        "stopped": _worker(store, "stopped", stopped_at=now - 5, heartbeat_at=now - 5),
        "alive": _worker(store, "alive"),
        # alive but hung: no heartbeat for longer than its own lease (5 s, in its meta)
        "hung": _worker(
            store, "hung", heartbeat_at=now - 6, meta={"started": me["started"], "lease": 5.0}
        ),  # fmt: skip
        # another host cannot be checked by pid: judged by its heartbeat, against its lease
        "far_silent": _worker(store, "far", host="elsewhere.invalid", pid=1, heartbeat_at=now - 31),
        "far_alive": _worker(store, "near", host="elsewhere.invalid", pid=1, heartbeat_at=now - 9),
    }
    assert socket.gethostname() != "elsewhere.invalid"
    _lease(store, ids["dead"], expires_in=-300)  # expired: not held (another took it or will)
    _lease(store, ids["dead_fresh"], expires_in=20)  # held until it expires
    _lease(store, ids["alive"], expires_in=20)
    _lease(store, ids["alive"], expires_in=20, status="waiting")
    _lease(store, ids["alive"], expires_in=20, status="done")  # finished: no lease held
    rows = {w["id"]: w for w in store.workers()}
    states = {name: rows[i]["state"] for name, i in ids.items()}
    assert states == {
        "dead": "dead", "dead_fresh": "dead", "reused": "dead", "stopped": "stopped",
        "alive": "running", "hung": "silent", "far_silent": "silent", "far_alive": "running",
    }  # fmt: skip
    leases = {name: rows[i]["leases"] for name, i in ids.items()}
    assert leases == {**dict.fromkeys(ids, 0), "dead_fresh": 1, "alive": 2}
    assert rows[ids["dead"]]["heartbeat_age_s"] == pytest.approx(353.9, abs=2)
    [one] = store.workers([ids["hung"]])
    assert one["state"] == "silent"


def test_swarm_workers_lists_the_dead_and_hides_the_stopped_unless_asked(
    store: TraceStore,
) -> None:
    dead = _worker(store, "dead", pid=_gone_pid(), heartbeat_at=time.time() - 353.9)
    stopped = _worker(store, "stopped", stopped_at=time.time())
    url = str(store.engine.url)
    shown = CliRunner().invoke(workers, ["--db", url, "--json"])
    assert shown.exit_code == 0, shown.output
    [row] = json.loads(shown.output)["workers"]
    assert row["id"] == dead and row["state"] == "dead" and row["leases"] == 0
    every = CliRunner().invoke(workers, ["--db", url, "--json", "--all"])
    assert {w["id"]: w["state"] for w in json.loads(every.output)["workers"]} == {
        dead: "dead",
        stopped: "stopped",
    }
    table = CliRunner().invoke(workers, ["--db", url])
    assert table.exit_code == 0 and "dead" in table.output and "running" not in table.output


WORKERS = [
    {"id": "worker-01a22c4bc645770cc0f3ca7d53", "state": "dead", "leases": 0,
     "heartbeat_age_s": 353.9, "host": "build-runner-7", "pid": 23901, "kind": "worker",
     "agents": "swarm_examples.bank"},
    {"id": "resume-01a22c4bc645770cc0f3ca7d54", "state": "running", "leases": 12,
     "heartbeat_age_s": 2.5, "host": "build-runner-7", "pid": 23977, "kind": "resume",
     "agents": None},
]  # fmt: skip


def _render(width: int) -> list[str]:
    out = Console(file=io.StringIO(), width=width, color_system=None)
    out.print(WorkersTable(WORKERS))
    lines = out.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert all(len(line.rstrip()) <= width for line in lines)
    return lines


def _words(lines: list[str]) -> set[str]:
    return {w for line in lines for w in line.replace("│", " ").replace("┃", " ").split()}


@pytest.mark.parametrize("width", [80, 120])
def test_the_workers_table_fits_and_never_cuts_a_value(width: int) -> None:
    lines = _render(width)
    seen = _words(lines)
    # the issue: pid `239`/`01`, `kin`/`d`, the agents module over six lines
    whole = {"worker-01a22c4bc645770cc0f3ca7d53", "resume-01a22c4bc645770cc0f3ca7d54", "23901",
             "23977", "dead", "running", "353.9s", "2.5s", "12", "swarm_examples.bank",
             "build-runner-7", "worker", "resume"}  # fmt: skip
    assert whole <= seen, whole - seen
    assert "…" not in "\n".join(lines)
    head = lines[1 : next(i for i, line in enumerate(lines) if line.startswith("━"))]
    headers = _words(head) - {"·"}
    assert headers == {"worker", "state", "leases", "beat", "host", "pid", "kind", "agents"}
    columns = head[0].count("┃") + 1
    if width >= 120:
        assert columns == 8  # room for every column of its own
    else:
        assert columns == 5  # kind and agents fold under the id, the pid under the host
        assert any("worker · swarm_examples.bank" in line for line in lines)
