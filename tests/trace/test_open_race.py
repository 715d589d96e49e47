"""Several processes opening one new database at the same moment (workers started together) all
get a store: the tables are made once, and nobody fails on the others' CREATE TABLE."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from swarm.trace import SCHEMA_VERSION, TraceStore

OPEN = """
import sys, time
from swarm.trace import TraceStore
go = float(sys.argv[2])
while time.time() < go:  # all start at once
    pass
TraceStore(sys.argv[1]).close()
"""


def test_six_processes_open_one_new_database_at_once(db_url: str) -> None:
    import time

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    go = time.time() + 3.0  # after every interpreter has started
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN, db_url, str(go)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, "\n".join(e for e in errors if e)
    with TraceStore(db_url) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.count("swarm_meta") == 1
