"""Values the store's encoders or the database refuse (lone surrogates, NUL, NaN, ints beyond 64
bits, bytes, objects, circular and very deep structures) are stored in a safe form, the rest of
the batch as given; a store fault is a `StoreError`, never a hang or a dead writer."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarm import StoreError, Swarm, TraceStore, agent
from swarm.context import Span
from swarm.models import Decision, Result, Task, TaskStatus
from swarm.testing import FakeRouter
from swarm.trace import _rows

HERE = Path(__file__).parent
SWARM = str(Path(sys.executable).with_name("swarm"))


def escaped(text: str, nul: bool = False) -> str:
    """What a person reads back for `text`: lone surrogates as `\\udXXX`, with `nul` (PostgreSQL)
    NUL as `\\x00`, the rest unchanged."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00") if nul else text


def integrity_ok(path: Path) -> bool:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()


# ---- the case, through the real command ------------------------------------------------------


@pytest.mark.slow
def test_a_lone_surrogate_is_stored_escaped_and_the_run_finishes(tmp_path: Path) -> None:
    requests = tmp_path / "requests.txt"
    lines = [f"greet customer {i}" for i in range(19)]
    lines.insert(7, "decode the price")
    requests.write_text("\n".join(lines) + "\n")
    db = tmp_path / "t.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.getcwd()])}
    env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run(
        [SWARM, "run", "--file", str(requests), "--agents", "hostile_agents", "--router",
         "keyword", "--db", f"sqlite:///{db}", "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert [r["status"] for r in out["results"]] == ["done"] * 20
    assert integrity_ok(db)
    with TraceStore(f"sqlite:///{db}") as store:
        tasks = store.tasks(limit=None)
        assert len(tasks) == 20 and {t["status"] for t in tasks} == {"done"}
        (decoded,) = [t for t in tasks if t["agent"] == "decoder"]
        assert decoded["output"] == "price: 5 \\ud83d"
        (span,) = store.spans(task_id=decoded["id"], kind="tool")
        assert span["name"] == "cut \\ud83d" and span["attributes"] == {"note": "half \\ud83d"}
        greeted = [t["output"] for t in tasks if t["agent"] == "greeter"]
        assert len(greeted) == 19 and all("👋 你好" in g for g in greeted)


# ---- any hostile value, at every row encoder -----------------------------------------------


class Opaque:
    def __repr__(self) -> str:
        return "Opaque()"


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class SurrogateRepr:
    def __repr__(self) -> str:
        return "half \udc00"


chars = st.one_of(
    st.characters(),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),  # lone surrogates
    st.just("\x00"),
)
texts = st.text(chars, max_size=12)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63, max_value=2**200) | st.integers(max_value=-(2**63) - 1),
    st.floats(),  # NaN and infinities included
    texts,
    st.binary(max_size=6),
    st.builds(Opaque) | st.builds(BadRepr) | st.builds(SurrogateRepr),
    st.frozensets(st.integers(), max_size=2) | st.complex_numbers(),
    st.datetimes(),
    st.uuids(),
)
keys = st.one_of(texts, st.integers(), st.none(), st.booleans(), st.floats(), st.builds(Opaque))
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(keys, inner, max_size=3)
        | st.tuples(inner, inner)
    ),
    max_leaves=10,
)


def shaped(value: Any, shape: str) -> Any:
    if shape == "circular":
        loop: list[Any] = [value]
        loop.append({"self": loop})
        return loop
    if shape in ("deep", "very deep"):
        for _ in range(300 if shape == "deep" else 3000):
            value = [value]
    return value


def plain(v: Any, depth: int = 0, nul: bool = False) -> bool:
    """JSON data the database takes as it is (so it must read back equal); `nul`: text with NUL
    is not (on PostgreSQL, a row holding NUL in a text column is stored in a safe form whole)."""
    if depth > 50:
        return False
    if v is None or isinstance(v, bool):
        return True
    if isinstance(v, int):
        return -(2**63) <= v < 2**63
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, str):
        return escaped(v, nul) == v
    if isinstance(v, list | tuple):
        return all(plain(x, depth + 1, nul) for x in v)
    if isinstance(v, dict):
        return all(
            isinstance(k, str) and plain(k, 0, nul) and plain(x, depth + 1, nul)
            for k, x in v.items()
        )
    return False


def as_read(v: Any) -> Any:
    return json.loads(json.dumps(v))  # tuples come back as lists


def storable(v: Any) -> bool:
    """Read back as valid UTF-8 JSON data."""
    json.dumps(v, ensure_ascii=False, allow_nan=False).encode("utf-8")
    return True


@pytest.mark.slow
@pytest.mark.parametrize("writer", ["thread", "process", "postgres"])
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=values,
    shape=st.sampled_from(["as is", "as is", "circular", "deep", "very deep"]),
    text=texts,
    number=st.floats(),
)
def test_hostile_values_are_stored_and_read_back(
    writer: str, value: Any, shape: str, text: str, number: float, request: Any
) -> None:
    value = shaped(value, shape)
    nul = writer == "postgres"

    def esc(text: str) -> str:
        return escaped(text, nul)

    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "h.db"
        if writer == "postgres":  # a fresh database per example
            url = request.getfixturevalue("postgres_server").new_database()
            store = TraceStore(url)
        else:
            url = f"sqlite:///{db}"
            store = TraceStore(url, writer=writer)  # type: ignore[arg-type]
        run_id = store.start_run(agents=text, meta={"v": value})
        task = Task(text=text, payload={text: value}, deadline=number, run_id=run_id)
        plain_task = Task(text="plain", payload={"n": 1}, run_id=run_id)
        store.task_queued(task)
        store.task_queued(plain_task)
        store.task_started(task.id, text, 1)
        decision = Decision(text, number, ((text, number),), version=text, latency_ms=number)
        store.record_decision(task.id, decision)
        span = Span("tool", text, task.id, run_id=run_id, error=text, attributes={text: value})
        span.ended_at = number
        store.record_span(span)
        store.task_finished(
            Result(
                task_id=task.id,
                status=TaskStatus.DONE,
                agent=text,
                output=value,
                error=text,
                hops=[text],
            )
        )
        store.task_finished(Result(task_id=plain_task.id, status=TaskStatus.DONE, output=[1]))
        store.flush_sync()  # raises StoreError if any row was not stored
        feedback = store.record_feedback(task.id, "bad", note=text, session_id=text)
        store.close()

        assert writer == "postgres" or integrity_ok(db)
        with TraceStore(url) as reader:
            row = reader.task(task.id)
            assert reader.task(plain_task.id)["output"] == [1]
            assert row["status"] == "done" and row["agent"] == esc(text)
            assert row["text"] == esc(text) and row["error"] == esc(text)
            assert row["hops"] == [esc(text)]
            if plain(value, 0, nul):
                assert row["output"] == as_read(value)
                assert row["payload"] == as_read({text: value}) or not plain(text, 0, nul)
            assert storable(row["output"]) and storable(row["payload"])
            assert row["deadline"] == (None if math.isnan(number) else number)
            d = reader.decision(task.id)
            assert d is not None and d["agent"] == esc(text)
            assert math.isnan(number) or d["confidence"] == number
            (s,) = reader.spans(task_id=task.id)
            assert s["name"] == esc(text) and s["error"] == esc(text)
            assert storable(s["attributes"])
            run = reader.run(run_id)
            assert run is not None and run["agents"] == esc(text) and storable(run["meta"])
            (fb,) = reader.feedback()
            assert fb["id"] == feedback["id"] and fb["note"] == esc(text)
        assert reader.write_errors == 0


def test_the_unstorable_row_alone_is_reported_and_the_rest_is_written(db_url: str) -> None:
    store = TraceStore(db_url)
    first = Task(text="first")
    store.task_queued(first)
    store.flush_sync()
    others = [Task(text=f"t{i}") for i in range(50)]
    for t in others[:25]:
        store.task_queued(t)
    store.task_queued(first)  # the same id again: the database refuses that row, not the batch
    for t in others[25:]:
        store.task_queued(t)
    refused = "(IntegrityError|UniqueViolation)"  # SQLite's, PostgreSQL's
    with pytest.raises(StoreError, match=f"1 of 51 writes failed: task {first.id}: {refused}"):
        store.flush_sync()
    later = Task(text="later")
    store.task_queued(later)
    store.flush_sync()  # the writer lives on
    with pytest.raises(StoreError, match="1 batch"):
        store.close()  # and close says so once more
    with TraceStore(db_url) as reader:
        assert reader.count("tasks") == 52


def test_safe_op_makes_every_column_storable() -> None:
    op = ("q", "id\ud800", None, 7, None, "a\x00b", {"k": 2**70}, 2**80, math.nan, Opaque(), 1.0,
          None, None)  # fmt: skip
    safe = _rows.safe_op(op)
    assert safe[1] == "id\\ud800" and safe[3] == "7" and safe[5] == "a\x00b"
    assert safe[6] == (_rows._JSON, '{"k": 1180591620717411303424}')
    assert safe[7] == 2**63 - 1 and safe[8] is None and safe[9] == "Opaque()"
    assert _rows.safe_op(op, escape_nul=True)[5] == "a\\x00b"
    with pytest.raises(ValueError, match="unknown trace op"):
        _rows.safe_op(("zz", 1))


# ---- the writer process killed (SQLite's writer process; PostgreSQL's writer is a thread, and a
# server that goes away is tests/trace/test_postgres_server.py) -------------------------------


@agent
async def echo(task, ctx):
    return task.text


@pytest.mark.slow
async def test_a_killed_writer_fails_flushes_promptly_and_the_swarm_goes_on(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    s = Swarm([echo], router=FakeRouter(default="echo"), db=url)
    await s.start()
    assert (await s.run("before")).ok
    store = s.store
    assert store is not None and store._process is not None
    os.kill(store._process.pid, signal.SIGKILL)
    store._process.wait()
    started = time.monotonic()
    results = await s.run_many([f"after {i}" for i in range(5)])  # the scheduler goes on
    assert [r.output for r in results] == [f"after {i}" for i in range(5)]
    for _ in range(2):  # the pending flush, and every later one
        with pytest.raises(StoreError, match="writer process .* stopped"):
            await store.flush()
    with pytest.raises(StoreError, match="writer process .* stopped"):
        await s.close()
    assert time.monotonic() - started < 10
    assert store.closed and store._thread is not None and not store._thread.is_alive()
    with TraceStore(url) as reader:
        assert reader.count("tasks") >= 1  # what was committed before is intact


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the writer in /proc")
def test_swarm_run_says_the_store_failed_and_exits_non_zero(tmp_path: Path) -> None:
    agents = tmp_path / "killer_agents.py"
    agents.write_text(
        textwrap.dedent(
            """
            import os, signal
            from pathlib import Path
            from swarm import agent

            @agent(examples=["kill"])
            async def killer(task, ctx):
                # The trace writer is a child process of this one, running _rows.py.
                killed = 0
                for proc in Path("/proc").iterdir():
                    try:
                        stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                        cmdline = (proc / "cmdline").read_bytes()
                    except (OSError, IndexError):
                        continue
                    if int(stat[1]) == os.getpid() and b"_rows.py" in cmdline:
                        os.kill(int(proc.name), signal.SIGKILL)
                        killed += 1
                return f"killed {killed}"
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.getcwd()])}
    proc = subprocess.run(
        [SWARM, "run", "kill it", "--agents", "killer_agents", "--router", "keyword", "--db",
         f"sqlite:///{tmp_path / 'r.db'}"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert "killed 1" in proc.stdout
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "writer process" in proc.stderr


def test_long_names_big_ints_and_nan_read_back_alike(db_url: str, backend: str) -> None:
    """What SQLite keeps as given, PostgreSQL keeps too (its columns are TEXT, not VARCHAR(n));
    where a value cannot be kept (an int beyond the column, NaN) both store the same safe form."""
    name, session = "n" * 1000, "s" * 300
    task = Task(text="x", session=session, agent=name, priority=2**40, deadline=math.nan)
    zero = Task(text="a\x00b", payload={"k": "c\x00d"})
    with TraceStore(db_url) as store:
        store.task_queued(task)
        store.task_queued(zero)
        store.task_started(task.id, name, 2**70)
        span = Span(name[:300], name, task.id, status=name[:100], attributes={"n": 2**70})
        span.ended_at = math.nan
        store.record_span(span)
        store.record_decision(task.id, Decision(name, math.nan, ((name, 1.0),), version=name))
    with TraceStore(db_url) as reader:
        row = reader.task(task.id)
        assert row["session_id"] == session and row["forced_agent"] == name
        assert row["agent"] == name and row["deadline"] is None
        int_max = 2**63 - 1 if backend == "sqlite" else 2**31 - 1  # INTEGER on PostgreSQL
        assert row["priority"] == (2**40 if backend == "sqlite" else int_max)
        assert row["attempts"] == int_max
        (s,) = reader.spans(task_id=task.id)
        assert (s["kind"], s["name"], s["status"]) == (name[:300], name, name[:100])
        assert s["ended_at"] is None and s["attributes"] == {"n": 2**70}
        d = reader.decision(task.id)
        assert d is not None and d["agent"] == name and d["confidence"] == 0.0
        assert d["router_version"] == name and d["candidates"] == [[name, 1.0]]
        nul = reader.task(zero.id)  # PostgreSQL refuses NUL in text: escaped there, whole row
        if backend == "sqlite":
            assert (nul["text"], nul["payload"]) == ("a\x00b", {"k": "c\x00d"})
        else:
            assert (nul["text"], nul["payload"]) == ("a\\x00b", {"k": "c\\x00d"})
        assert reader.write_errors == 0
