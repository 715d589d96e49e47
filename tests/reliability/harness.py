"""The reliability harness shared by tests/reliability (short runs in CI) and
benchmarks/reliability.py (the full runs behind RELIABILITY.md): faults injected at scale, and a
real `swarm run` killed with SIGKILL and resumed. Everything runs on real parts: real SQLite files,
real subprocesses, the real scheduler.
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from swarm.models import TaskStatus
from swarm.testing import FakeRouter
from swarm.testing.faults import FaultyAgent, fault_texts

ROOT = Path(__file__).resolve().parents[2]
SWARM = str(Path(sys.executable).with_name("swarm"))
BANK_AGENTS = "swarm_examples.bank"
"""The bank pack's agents module, as `swarm run --agents` takes it."""

TERMINAL = {s.value for s in TaskStatus if s.finished}


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def statuses(db_path: Path) -> Counter[str]:
    """Task rows by status, read with plain sqlite3 (not through swarm)."""
    with sqlite3.connect(db_path) as con:
        return Counter(dict(con.execute("select status, count(*) from tasks group by status")))


def integrity(db_path: Path) -> str:
    with sqlite3.connect(db_path) as con:
        return str(con.execute("pragma integrity_check").fetchone()[0])


def hold_write_lock(db_path: Path, at_s: float, for_s: float) -> threading.Thread:
    """A slow store: another connection holds SQLite's write lock for `for_s` seconds, starting
    `at_s` seconds from now, as a backup or a long migration would."""

    def hold() -> None:
        time.sleep(at_s)
        con = sqlite3.connect(db_path, timeout=30)
        try:
            con.execute("begin immediate")
            time.sleep(for_s)
            con.rollback()
        finally:
            con.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    return thread


async def run_faults(
    db_path: Path,
    n: int,
    *,
    fault_rate: float = 0.1,
    seed: int = 0,
    concurrency: int = 64,
    slow_store_s: float = 0.0,
    limit_s: float = 600.0,
) -> dict[str, Any]:
    """Run `n` tasks, `fault_rate` of them faulty (see swarm.testing.faults), through a Swarm on a
    real SQLite file; return what became of them. Raises TimeoutError if the run does not finish
    within `limit_s` seconds (a hang)."""
    from swarm.swarm import Swarm

    texts = fault_texts(n, fault_rate=fault_rate, seed=seed)
    url = f"sqlite:///{db_path}"
    start = time.perf_counter()
    locker = None
    async with asyncio.timeout(limit_s):
        async with Swarm(
            [FaultyAgent(hang_s=30.0)],
            router=FakeRouter(default="faulty"),
            db=url,
            concurrency=concurrency,
        ) as swarm:
            if slow_store_s:
                locker = hold_write_lock(db_path, at_s=0.2, for_s=slow_store_s)
            handles = [await swarm.submit(t) for t in texts]
            results = [await h for h in handles]
    elapsed = time.perf_counter() - start
    if locker is not None:
        locker.join(timeout=slow_store_s + 5)
    by_fault: dict[str, Counter[str]] = {}
    for text, r in zip(texts, results, strict=True):
        by_fault.setdefault(text.split()[0], Counter())[r.status.value] += 1
    return {
        "tasks": n,
        "fault_rate": fault_rate,
        "seconds": round(elapsed, 2),
        "tasks_per_s": round(n / elapsed, 1),
        "results": {k: dict(v) for k, v in sorted(by_fault.items())},
        "stored": dict(statuses(db_path)),
        "integrity": integrity(db_path),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


# ---- SIGKILL and resume ------------------------------------------------------------------------


def bank_requests(n: int, seed: int) -> list[tuple[str, int]]:
    """`n` requests with side effects (top-ups, each of a distinct amount in pounds) mixed with
    read-only questions; the amounts let a check find any top-up applied twice."""
    rng = random.Random(seed)
    out: list[tuple[str, int]] = []
    for i in range(n):
        if rng.random() < 0.7:
            pounds = 1 + i  # distinct per request
            out.append((f"top up {pounds} pounds", pounds * 100))
        else:
            out.append(("what is the exchange rate from pounds to euros", 0))
    return out


def bank_side_effects(bank_db: Path) -> dict[str, Any]:
    """What the sandbox bank shows: top-up transactions, recorded actions, and whether each top-up
    happened once (transactions == recorded actions, no amount twice, balances add up)."""
    with sqlite3.connect(bank_db) as con:
        txs = con.execute(
            "select account_id, amount_cents from transactions"
            " where kind = 'top_up' and counterparty = 'top-up'"  # not the seeded one
        ).fetchall()
        actions = con.execute("select count(*) from actions where action = 'top_up'").fetchone()[0]
        balances = dict(con.execute("select id, balance_cents from accounts"))
    amounts = Counter(a for _, a in txs)
    return {
        "top_ups": len(txs),
        "recorded": int(actions),
        "repeated": sum(c - 1 for c in amounts.values() if c > 1) + max(0, len(txs) - actions),
        "balances": balances,
    }


def _swarm_env(workdir: Path, bank_db: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        SWARM_BANK_DB=f"sqlite:///{bank_db}",
        PYTHONPATH=os.pathsep.join(
            p for p in (str(ROOT), str(ROOT / "examples"), env.get("PYTHONPATH", "")) if p
        ),
    )
    return env


def _wait_for_rows(db: Path, proc: subprocess.Popen[bytes], *, limit_s: float) -> None:
    """Until the run has stored its first task (its start-up, imports and all, is over)."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end and proc.poll() is None:
        try:
            with sqlite3.connect(db, timeout=1) as con:
                if con.execute("select count(*) from tasks").fetchone()[0]:
                    return
        except sqlite3.Error:
            pass  # not created yet
        time.sleep(0.02)


def kill_and_resume(
    workdir: Path, *, requests: int, kill_at_s: float, seed: int, timeout_s: float = 180.0
) -> dict[str, Any]:
    """Start a real `swarm run` of the bank on a real SQLite trace store, SIGKILL it `kill_at_s`
    seconds after its first task reached the store, run `swarm resume`, and report: tasks left
    unfinished (lost), top-ups applied twice, and `PRAGMA integrity_check` of both databases."""
    workdir.mkdir(parents=True, exist_ok=True)
    db, bank_db = workdir / "swarm.db", workdir / "bank.db"
    reqs = bank_requests(requests, seed)
    lines = workdir / "requests.txt"
    lines.write_text("".join(f"{text}\n" for text, _ in reqs))
    env = _swarm_env(workdir, bank_db)
    url = f"sqlite:///{db}"
    run = subprocess.Popen(
        [SWARM, "run", "--file", str(lines), "--agents", BANK_AGENTS, "--router", "keyword",
         "--db", url, "--concurrency", "8", "--json"],
        cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    _wait_for_rows(db, run, limit_s=120)
    time.sleep(kill_at_s)
    finished_before_kill = run.poll() is not None
    if not finished_before_kill:
        os.killpg(run.pid, signal.SIGKILL)  # the writer process dies with it
    run.wait(timeout=30)
    stored_at_kill = dict(statuses(db)) if db.exists() else {}
    resumed = subprocess.run(
        [SWARM, "resume", "--db", url, "--json"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout_s,
    )  # fmt: skip
    after = dict(statuses(db)) if db.exists() else {}
    unfinished = sum(v for k, v in after.items() if k not in TERMINAL)
    effects = bank_side_effects(bank_db) if bank_db.exists() else {"repeated": 0, "top_ups": 0}
    return {
        "kill_at_s": kill_at_s,
        "finished_before_kill": finished_before_kill,
        "stored_at_kill": stored_at_kill,
        "resume_exit": resumed.returncode,
        "resume_error": resumed.stderr[-500:] if resumed.returncode not in (0, 1) else "",
        "tasks_after": after,
        "lost": unfinished,
        "repeated_side_effects": effects["repeated"],
        "top_ups": effects["top_ups"],
        "integrity": integrity(db) if db.exists() else "no store yet",
        "bank_integrity": integrity(bank_db) if bank_db.exists() else "no bank yet",
    }
