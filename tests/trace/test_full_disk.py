"""The trace store on a full disk (a file-size limit, RLIMIT_FSIZE, in a subprocess): a clear
error naming the store, the database intact, no batch half-written, earlier rows kept.

SQLite only: the limit is set on this process's files, and a PostgreSQL server writes its own (a
full disk there is an OperationalError the writer retries, then reports, as a server that stays
down: tests/trace/test_postgres_server.py)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from swarm.models import Task
from swarm.trace import TraceStore

pytest.importorskip("resource")

SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    from swarm.errors import StoreError
    from swarm.models import Task
    from swarm.trace import TraceStore

    url, writer, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # every file, the WAL included
    store = TraceStore(url, writer=writer, flush_interval=60)  # wakes on flush only
    groups = []
    for g in range(12):
        for i in range(200):  # one group, one batch, one transaction
            store.task_queued(Task(text=f"group {g} task {i} " + "x" * 1000, run_id=f"g{g}"))
        try:
            store.flush_sync()
            groups.append([g, None])
        except StoreError as exc:
            groups.append([g, str(exc)])
    try:
        store.close()
        closed = None
    except StoreError as exc:
        closed = str(exc)
    print(json.dumps({"groups": groups, "closed": closed}))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("writer", ["thread", "process"])
def test_a_full_disk_is_a_clear_error_and_the_store_stays_whole(
    tmp_path: Path, writer: str
) -> None:
    db = tmp_path / "full.db"
    url = f"sqlite:///{db}"
    with TraceStore(url) as store:  # rows stored before the disk fills
        before = [Task(text=f"before {i}") for i in range(100)]
        for t in before:
            store.task_queued(t)
    limit = db.stat().st_size + 2_000_000
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, url, writer, str(limit)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    failed = [(g, error) for g, error in out["groups"] if error is not None]
    stored = [g for g, error in out["groups"] if error is None]
    assert stored and failed, out  # some groups fit under the limit, the others did not
    for _, error in failed:
        assert error.startswith(f"trace store {url}: 200 of 200 writes failed")
        assert "is the disk full, or the file over a size limit?" in error
    assert out["closed"] is not None and f"trace store {url}" in out["closed"]

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    counts = dict(conn.execute("SELECT run_id, count(*) FROM tasks GROUP BY run_id").fetchall())
    conn.close()
    assert counts.pop(None) == 100  # the earlier rows are intact
    assert counts == {f"g{g}": 200 for g in stored}  # whole groups, and only those that said so
