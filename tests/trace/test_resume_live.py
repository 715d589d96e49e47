"""`swarm resume` while the run it would resume is still alive (../shared/cases/resume_live): the
live run's tasks are left to it, so no side effect happens twice; `--force` takes them anyway; a
killed run's tasks are resumed as before. Real subprocesses on a real SQLite file and on
PostgreSQL."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy.exc import SQLAlchemyError

from swarm import StoreError, TraceStore
from swarm.trace.owner import owner_alive, process_owner

pytestmark = pytest.mark.slow

SWARM = str(Path(sys.executable).with_name("swarm"))
HERE = Path(__file__).resolve().parent


def _env(tmp_path: Path) -> dict[str, str]:
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        SIDE_EFFECTS_LOG=str(tmp_path / "side_effects.log"),
        WORK_S="1",
        HF_HUB_OFFLINE="1",
    )


def _start_run(tmp_path: Path, db: str) -> subprocess.Popen[bytes]:
    requests = tmp_path / "requests.txt"
    requests.write_text("".join(f"send invoice {i}\n" for i in range(12)))
    return subprocess.Popen(
        [SWARM, "run", "--file", str(requests), "--agents", "resume_live_agents",
         "--router", "keyword", "--concurrency", "2", "--db", db],
        cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


def _wait_running(db: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise AssertionError("the run ended before it was caught running")
        try:
            with TraceStore(db) as store:
                if store.tasks(status="done", limit=1):
                    return
        except (StoreError, SQLAlchemyError):  # not made yet
            pass
        time.sleep(0.05)
    raise AssertionError("the run never got going")


def _executions(tmp_path: Path) -> collections.Counter[str]:
    log = tmp_path / "side_effects.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return collections.Counter(line.split("\t")[0] for line in lines)


def _resume(tmp_path: Path, db: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SWARM, "resume", "--db", db, "--json", *extra],
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_resume_leaves_a_live_runs_tasks_to_it(tmp_path: Path, db_url: str) -> None:
    db = db_url
    run = _start_run(tmp_path, db)
    try:
        _wait_running(db, run)
        resumed = _resume(tmp_path, db)
        assert resumed.returncode == 0, resumed.stderr
        report = json.loads(resumed.stdout.strip().splitlines()[-1])
        assert report["runs"] == [] and len(report["live_runs"]) == 1
        assert "is still running" in resumed.stderr and "--force" in resumed.stderr
        assert run.wait(timeout=60) == 0
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
    executions = _executions(tmp_path)
    assert len(executions) == 12 and set(executions.values()) == {1}, executions


def test_resume_takes_a_killed_runs_tasks_and_force_takes_a_live_ones(
    tmp_path: Path, db_url: str, request: pytest.FixtureRequest
) -> None:
    db = db_url
    run = _start_run(tmp_path, db)
    _wait_running(db, run)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    resumed = _resume(tmp_path, db)
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert report["live_runs"] == {} and report["runs"][0]["resumed"] >= 1
    assert sum(_executions(tmp_path).values()) >= 12  # at-least-once: a cut-off body reruns

    if db.startswith("sqlite"):
        other = f"sqlite:///{tmp_path / 'u.db'}"
    else:
        other = request.getfixturevalue("postgres_server").new_database()
    second = _start_run(tmp_path, other)
    try:
        _wait_running(other, second)
        forced = _resume(tmp_path, other, "--force")
        assert forced.returncode == 0, forced.stderr
        report = json.loads(forced.stdout.strip().splitlines()[-1])
        assert report["live_runs"] == {} and report["runs"][0]["resumed"] >= 1
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)
        second.wait(timeout=30)


def test_owner_liveness() -> None:
    me = process_owner()
    assert owner_alive(me)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not owner_alive({**me, "pid": child.pid})  # exited
    assert not owner_alive({**me, "started": (me["started"] or 0) + 1}) or me["started"] is None
    assert owner_alive({**me, "host": "another-host"})  # cannot be checked from here
    assert not owner_alive(None) and not owner_alive({"pid": "x"})
