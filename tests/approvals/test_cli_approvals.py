"""`swarm approvals` and `swarm approve` on a real store file (CliRunner), and the whole restart
story through real processes: `swarm run` waits for a person, is killed with SIGKILL, `swarm
resume` brings the task back still waiting, `swarm approve` from a third process decides it, and
the resumed task finishes without running the tool before the approval a second time."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from swarm import Task, TraceStore
from swarm.cli import main

SWARM = str(Path(sys.executable).with_name("swarm"))
HERE = Path(__file__).resolve().parent


def asked(db_url: str, question: str = "refund 120.00?") -> dict[str, Any]:
    with TraceStore(db_url) as store:
        task = Task(text="refund my order")
        store.task_queued(task)
        store.task_started(task.id, "refunds", 1)
        store.flush_sync()
        return store.ask_approval(task.id, question, agent="refunds", details={"amount": 120})


def test_list_approve_and_a_second_decision_is_refused(db_url: str) -> None:
    row = asked(db_url)
    runner = CliRunner()
    listed = runner.invoke(main, ["approvals", "--db", db_url])
    assert listed.exit_code == 0, listed.output
    assert row["id"][-8:] in listed.output and "refund 120.00?" in listed.output
    assert "swarm approve ID" in listed.output

    done = runner.invoke(
        main, ["approve", row["id"][-8:], "--note", "ok", "--by", "ana", "--db", db_url]
    )
    assert done.exit_code == 0, done.output
    assert done.output.startswith("approved " + row["id"])

    again = runner.invoke(main, ["approve", row["id"], "--deny", "--db", db_url])
    assert again.exit_code == 2
    assert "was approved by ana" in again.output and "a decision is final" in again.output

    empty = runner.invoke(main, ["approvals", "--db", db_url])
    assert "no approvals" in empty.output
    every = runner.invoke(main, ["approvals", "--all", "--json", "--db", db_url])
    [stored] = json.loads(every.output)["approvals"]
    assert (stored["status"], stored["decided_by"], stored["note"]) == ("approved", "ana", "ok")


def test_deny_and_unknown_ids(db_url: str) -> None:
    row = asked(db_url)
    runner = CliRunner()
    denied = runner.invoke(main, ["approve", row["id"], "--deny", "--json", "--db", db_url])
    assert denied.exit_code == 0, denied.output
    assert json.loads(denied.output)["status"] == "denied"
    unknown = runner.invoke(main, ["approve", "zzzz", "--db", db_url])
    assert unknown.exit_code == 2 and "no approval with id 'zzzz'" in unknown.output


# ---- the restart, with real processes ----------------------------------------------------------


def _env(tmp_path: Path) -> dict[str, str]:
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        SIDE_EFFECTS_LOG=str(tmp_path / "side_effects.log"),
        HF_HUB_OFFLINE="1",
    )


def _swarm(tmp_path: Path, *args: str, stderr: str = "") -> subprocess.Popen[str]:
    """`swarm ARGS` in its own session; stdout piped, stderr to the file `stderr` in `tmp_path`."""
    with (tmp_path / (stderr or "stderr.log")).open("w") as err:
        return subprocess.Popen(
            [SWARM, *args], cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE,
            stderr=err, text=True, start_new_session=True,
        )  # fmt: skip


def _stderr_has(tmp_path: Path, text: str, name: str = "run.err") -> bool:
    path = tmp_path / name
    return path.exists() and text in path.read_text()


def _query(db_file: Path, sql: str) -> list[tuple[Any, ...]]:
    try:
        with sqlite3.connect(db_file, timeout=5) as con:
            return con.execute(sql).fetchall()
    except sqlite3.Error:  # not created yet
        return []


def _until(what: str, check: Any, proc: subprocess.Popen[str], seconds: float = 60) -> Any:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        found = check()
        if found:
            return found
        if proc.poll() is not None:
            raise AssertionError(f"the process ended before {what} (exit {proc.returncode})")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _executions(tmp_path: Path) -> list[str]:
    log = tmp_path / "side_effects.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.slow
def test_a_waiting_task_survives_sigkill_and_resumes_without_redoing_its_steps(
    tmp_path: Path,
) -> None:
    db_file = tmp_path / "t.db"
    db = f"sqlite:///{db_file}"
    run = _swarm(tmp_path, "run", "refund my order", "--agents", "refund_agents",
                 "--router", "keyword", "--db", db, stderr="run.err")  # fmt: skip
    resume: subprocess.Popen[str] | None = None
    try:
        [(approval_id,)] = _until(
            "the approval",
            lambda: _query(db_file, "select id from approvals where status = 'waiting'"),
            run,
        )
        _until("the run to say so", lambda: _stderr_has(tmp_path, "waiting for a person"), run)
        os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
        assert _query(db_file, "select status from tasks") == [("waiting",)]
        assert _executions(tmp_path) == ["charge 120.0"]

        resume = _swarm(tmp_path, "resume", "--db", db, "--json", stderr="resume.err")
        # Back to waiting, after the tool before the approval was served from the trace.
        _until(
            "the resumed task to wait again",
            lambda: (
                _query(
                    db_file,
                    "select 1 from spans where name = '_charge' "
                    "and json_extract(attributes, '$.replayed') = 1",
                )
                and _query(db_file, "select status from tasks") == [("waiting",)]
            ),
            resume,
        )
        listed = subprocess.run(
            [SWARM, "approvals", "--db", db, "--json"], env=_env(tmp_path),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert [a["id"] for a in json.loads(listed.stdout)["approvals"]] == [approval_id]

        decided = subprocess.run(
            [SWARM, "approve", approval_id[-8:], "--note", "checked", "--db", db],
            env=_env(tmp_path), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert decided.returncode == 0, decided.stderr
        out, _ = resume.communicate(timeout=60)
        assert resume.returncode == 0, (tmp_path / "resume.err").read_text()
        assert "refund 120.00 to card ending 4821?" in (tmp_path / "resume.err").read_text()
    finally:
        for proc in (run, resume):
            if proc is not None:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate(timeout=30)  # closes its pipe
    report = json.loads(out.strip().splitlines()[-1])
    [result] = report["runs"][0]["results"]
    assert result["status"] == "done"
    assert result["output"] == {"approved": True, "refund": {"refunded": 120.0}}
    assert _executions(tmp_path) == ["charge 120.0", "refund 120.0"]  # each ran once in all
    assert _query(db_file, "select count(*) from approvals") == [(1,)]
    assert _query(db_file, "select status, note from approvals") == [("approved", "checked")]
