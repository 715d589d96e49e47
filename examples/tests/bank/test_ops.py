"""The engineering desk: log triage finds an injected burst (and none in a quiet log), and the
script runner's guards hold: allow-list, no options, timeout, captured output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from swarm import Swarm
from swarm.agents import AgentRegistry
from swarm.testing import KeywordRouter
from swarm_examples import ops
from swarm_examples.ops.logs import triage, write_sample_log


@pytest.mark.parametrize("at", ["2024-05-01T10:15:00", "2024-05-01T11:05:00"])
def test_triage_finds_an_injected_burst(tmp_path: Path, at: str) -> None:
    log = write_sample_log(tmp_path / "x.log", burst_at=at, cause="disk /var is 99% full")
    report = triage(log.read_text())
    assert len(report["bursts"]) == 1
    burst = report["bursts"][0]
    assert burst["start"] == at
    assert "disk /var is 99% full" in burst["likely_cause"]
    assert burst["top_error_count"] >= 50


def test_triage_finds_no_burst_in_a_quiet_log(tmp_path: Path) -> None:
    log = write_sample_log(tmp_path / "q.log", burst_at=None)
    report = triage(log.read_text() + "not a log line\n")
    assert report["bursts"] == [] and report["errors"] > 0
    assert report["unparsed_lines"] == 1


@pytest.fixture
async def desk(tmp_path: Path) -> Any:
    reg = AgentRegistry()
    reg.load_module("swarm_examples.ops")
    services = ops.ops_sandbox({}, script_timeout=1.0)
    async with Swarm(reg, router=KeywordRouter(reg), db=None, services=services) as s:
        yield s
    ops.teardown(services)


async def test_script_runner_runs_only_allowed_scripts(desk: Swarm) -> None:
    ok = await desk.run("run the health check", agent="script_runner")
    assert ok.output["ok"] is True and "4 services healthy" in ok.output["stdout"]
    refused = await desk.run("run deploy_everything", agent="script_runner")
    assert refused.output["done"] is False
    flag = await desk.run("run health_check", agent="script_runner", payload={"args": ["-x"]})
    assert flag.output["ok"] is False and "options are not allowed" in flag.output["error"]


async def test_script_runner_kills_a_script_at_its_timeout(desk: Swarm) -> None:
    r = await desk.run("run reindex_ledger", agent="script_runner", payload={"args": ["30"]})
    assert r.output["ok"] is False and "timeout" in r.output["error"]


async def test_log_triage_stays_in_its_folder(desk: Swarm) -> None:
    r = await desk.run("triage ../../etc/passwd.log", agent="log_triage")
    assert r.output["done"] is False
    found = await desk.run("triage core-banking.log", agent="log_triage")
    assert "connection pool exhausted" in found.output["summary"]


async def test_runbook_uses_the_template_without_an_llm(desk: Swarm) -> None:
    r = await desk.run("write a runbook for a disk full alert", agent="runbook")
    assert r.output["source"] == "template" and r.output["markdown"].startswith("# Runbook")


def test_allow_list_is_the_scripts_folder() -> None:
    names = set(ops.allowed_scripts())
    assert names == {p.stem for p in ops.SCRIPTS_DIR.glob("*.py")} - {"__init__"}
