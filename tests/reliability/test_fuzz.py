"""Property-based fuzzing of what users hand swarm: scenario files, labelled data files, task
payloads and command-line arguments. Only clear errors (swarm's UserError family, or a CLI exit
code with one line), never a traceback, and nothing stored is corrupted."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarm.errors import DataError, ScenarioError
from swarm.router import read_labelled_file
from swarm.scenarios.loader import parse_suite

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# ---- scenario files ----------------------------------------------------------------------------

SUITE_KEYS = ["name", "agents", "router", "tags", "setup", "scenarios", "steps", "user", "expect",
              "agent", "status", "output", "contains", "regex", "table", "latency_ms", "state",
              "out_of_scope", "equals", "schema", "predicate", "routed_to"]  # fmt: skip

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
    st.sampled_from(SUITE_KEYS),
)  # fmt: skip
yaml_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(SUITE_KEYS), st.text(max_size=8)), inner,
                        max_size=5),
    ),
    max_leaves=25,
)  # fmt: skip


def _suite_like(value: Any) -> str:
    return yaml.safe_dump(value, allow_unicode=True, sort_keys=False)


@FUZZ
@given(doc=yaml_values)
def test_any_yaml_document_loads_or_names_where_it_is_wrong(doc: Any) -> None:
    try:
        parse_suite(_suite_like(doc), "fuzz.yaml")
    except ScenarioError as exc:
        assert str(exc).startswith("fuzz.yaml:"), exc  # file:line:col: field: what was expected


@FUZZ
@given(text=st.text(max_size=300))
def test_any_text_loads_or_names_where_it_is_wrong(text: str) -> None:
    try:
        parse_suite(text, "fuzz.yaml")
    except ScenarioError as exc:
        assert str(exc).startswith("fuzz.yaml:"), exc


@FUZZ
@given(
    scenarios=st.lists(
        st.fixed_dictionaries(
            {"name": st.text(max_size=10)},
            optional={
                "steps": st.lists(
                    st.fixed_dictionaries(
                        {"user": st.one_of(st.text(max_size=20), st.integers(), st.none())},
                        optional={"expect": yaml_values},
                    ),
                    max_size=3,
                ),
                "table": yaml_values,
            },
        ),
        max_size=3,
    )
)
def test_near_valid_suites_load_or_name_the_field(scenarios: list[dict[str, Any]]) -> None:
    doc = {"name": "fuzz", "agents": "swarm_examples.quickstart", "scenarios": scenarios}
    try:
        parse_suite(_suite_like(doc), "fuzz.yaml")
    except ScenarioError as exc:
        assert str(exc).startswith("fuzz.yaml:"), exc


# ---- labelled data files -----------------------------------------------------------------------


@FUZZ
@given(
    raw=st.one_of(st.binary(max_size=400), st.text(max_size=400).map(str.encode)),
    suffix=st.sampled_from([".csv", ".tsv", ".jsonl", ".txt", ""]),
)
def test_any_labelled_file_reads_or_names_the_line(
    tmp_path: Path, raw: bytes, suffix: str
) -> None:
    path = tmp_path / f"data{suffix}"
    path.write_bytes(raw)
    try:
        pairs = read_labelled_file(path)
    except DataError as exc:
        assert str(exc).startswith(str(path)), exc
    else:
        assert pairs and all(t.strip() and lab.strip() for t, lab in pairs)


@FUZZ
@given(
    rows=st.lists(
        st.dictionaries(
            st.sampled_from(["text", "label", "intent", "query", "x"]),
            st.one_of(st.text(max_size=15), st.integers(), st.none(), st.lists(st.integers())),
            max_size=3,
        ),
        max_size=6,
    )
)
def test_jsonl_rows_of_any_shape_read_or_name_the_line(
    tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    import json

    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    try:
        read_labelled_file(path)
    except DataError as exc:
        assert str(exc).startswith(f"{path}:") or "no labelled rows" in str(exc), exc


# ---- task payloads -----------------------------------------------------------------------------

hostile_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["\ud83d", "a\x00b", "\udcff", "\U0001f600", "\u202e", ""]),
)  # fmt: skip
payloads = st.dictionaries(
    st.one_of(st.text(max_size=6), st.sampled_from(["\ud800", "k\x00"])),
    st.recursive(
        hostile_scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
        ),
        max_leaves=10,
    ),
    max_size=4,
)


@pytest.mark.slow
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(payload=payloads, text=st.text(max_size=40))
def test_any_payload_and_text_reach_a_terminal_state_and_the_store(
    tmp_path_factory: pytest.TempPathFactory, payload: dict[str, Any], text: str
) -> None:
    import asyncio

    from swarm import Swarm, agent
    from swarm.testing import FakeRouter
    from swarm.trace import TraceStore

    @agent(examples=["echo"])
    async def echo(task: Any, ctx: Any) -> Any:
        return {"text": task.text, "payload": task.payload}

    db = tmp_path_factory.mktemp("payload") / "swarm.db"

    async def go() -> Any:
        async with asyncio.timeout(60):
            async with Swarm([echo], router=FakeRouter(default="echo"), db=f"sqlite:///{db}") as s:
                return await s.run(text or "empty", payload=payload)

    result = asyncio.run(go())
    assert result.status.finished
    with TraceStore(f"sqlite:///{db}") as store:
        tree = store.task_tree(result.task_id)
    assert tree["status"] == result.status.value
    with sqlite3.connect(db) as con:
        assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    _ = math  # NaN payloads compare unequal to themselves; the status check above is the point


# ---- command-line arguments --------------------------------------------------------------------

WORDS = ["run", "traces", "show", "resume", "router", "eval", "explain", "train", "versions",
         "use", "feedback", "good", "bad", "test", "replay", "diff", "--json", "--agents",
         "--agent", "--router", "--db", "--file", "--limit", "--run", "--data", "--model",
         "--out", "--concurrency", "keyword", "nonexistent.module", "swarm_examples.quickstart",
         "-1", "0", "1e9", "abc", "\ud83d", "", "--", "-k", "--tags", "./missing.yaml",
         "sqlite:///{tmp}/x.db", "postgresql://nowhere/x", "{tmp}/missing.csv"]  # fmt: skip
NEVER = ["demo", "console", "--help"]  # interactive or long-running; --help is tested elsewhere


@pytest.mark.slow
@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(argv=st.lists(st.sampled_from(WORDS), min_size=1, max_size=6))
def test_any_command_line_ends_in_an_exit_code_not_a_traceback(
    tmp_path_factory: pytest.TempPathFactory, argv: list[str]
) -> None:
    from swarm.cli import main

    tmp = tmp_path_factory.mktemp("cli")
    args = [a.replace("{tmp}", str(tmp)) for a in argv]
    if any(a in NEVER for a in args):
        return
    if "--db" not in args:
        args += ["--db", f"sqlite:///{tmp}/swarm.db"] if args[0] in ("run", "traces") else []
    runner = CliRunner()
    result = runner.invoke(main, args, env={"HF_HUB_OFFLINE": "1", "SWARM_DB": f"sqlite:///{tmp}/s.db",
                                            "SWARM_LLM_BASE_URL": ""})  # fmt: skip
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"swarm {args!r} raised {result.exception!r}") from result.exception
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output[-500:])
    assert "Traceback" not in result.output, (args, result.output[-2000:])
