"""`swarm test`, `swarm replay`, `swarm diff` through a throwaway click group, and the pytest
plugin collecting a YAML suite (with pytester)."""

from __future__ import annotations

import importlib.metadata
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from swarm.cli.scenarios import COMMANDS

pytest_plugins = ["pytester"]

SUITE = """
name: shop
agents: {pack}
router: keyword
setup: [{{fixture: seed, args: {{items: {{}}}}}}]
scenarios:
  - name: lamp
    tags: [buy]
    steps: [{{user: buy a lamp, expect: {{agent: shop}}}}]
  - name: weather
    steps:
      - user: will it rain tomorrow
        expect: {{agent: weather, output: {{contains: {{forecast: sunny}}}}}}
"""


@pytest.fixture
def cli() -> click.Group:
    group = click.Group("swarm")
    for command in COMMANDS:
        group.add_command(command)
    return group


def _json(output: str) -> dict:  # type: ignore[type-arg]
    return json.loads(output.strip().splitlines()[-1])


def test_swarm_test_passes_writes_junit_and_html(
    cli: click.Group, pack: str, write: Callable[[str, str], Path], db_url: str, tmp_path: Path
) -> None:
    suite = write("shop.yaml", SUITE.format(pack=pack))
    junit, page = tmp_path / "j.xml", tmp_path / "r.html"
    args = ["test", str(suite), "--db", db_url, "--junit", str(junit), "--report", str(page)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "passed · 2/2 scenarios passed" in res.output
    assert ET.parse(junit).getroot().get("tests") == "2"
    assert "data:image/png;base64," in page.read_text()


def test_swarm_test_fails_with_reasons_and_selects(
    cli: click.Group, pack: str, write: Callable[[str, str], Path], db_url: str
) -> None:
    suite = write("shop.yaml", SUITE.format(pack=pack).replace("agent: weather", "agent: shop"))
    bad = write("bad.yaml", "name: x\nagents: m\nscenarios: {}\n")
    res = CliRunner().invoke(cli, ["test", str(suite.parent), "--db", db_url, "--json"])
    assert res.exit_code == 1
    data = _json(res.output)
    assert data["counts"]["failed"] == 1 and data["counts"]["load_errors"] == 1
    assert data["load_errors"][0].startswith(f"{bad}:3:12: scenarios: expected a valid list")
    reasons = data["suites"][0]["scenarios"][1]["reasons"]
    assert reasons[0].startswith(
        "step 1 ('will it rain tomorrow'): expected agent shop, got weather"
    )
    only = CliRunner().invoke(cli, ["test", str(suite), "--db", db_url, "--tags", "buy", "--json"])
    assert only.exit_code == 0 and _json(only.output)["counts"]["scenarios"] == 1
    k = CliRunner().invoke(cli, ["test", str(suite), "--db", db_url, "-k", "not lamp", "--json"])
    assert k.exit_code == 1 and _json(k.output)["counts"]["scenarios"] == 1


def test_swarm_replay_diff_and_save_suite(
    cli: click.Group, pack: str, write: Callable[[str, str], Path], db_url: str, tmp_path: Path
) -> None:
    suite = write("shop.yaml", SUITE.format(pack=pack))
    res = CliRunner().invoke(cli, ["test", str(suite), "--db", db_url, "--json"])
    run_id = _json(res.output)["suites"][0]["run_id"]
    rep = CliRunner().invoke(cli, ["replay", run_id, "--db", db_url, "--json"])
    assert rep.exit_code == 0, rep.output
    data = _json(rep.output)
    assert data["compared"] == 2 and data["changes"] == []
    text = CliRunner().invoke(cli, ["replay", run_id, "--db", db_url])
    assert "no change in 2 tasks" in " ".join(text.output.split())
    d = CliRunner().invoke(cli, ["diff", run_id, data["run_id"], "--db", db_url])
    assert d.exit_code == 0 and "no change in 2 tasks" in " ".join(d.output.split())
    saved = tmp_path / "saved.yaml"
    s = CliRunner().invoke(cli, ["replay", run_id, "--db", db_url, "--save-suite", str(saved)])
    assert s.exit_code == 0 and saved.exists()
    again = CliRunner().invoke(cli, ["test", str(saved), "--db", db_url, "--json"])
    # The weather output is deterministic; the shop's price is random, so only it may fail.
    reasons = [r for sc in _json(again.output)["suites"][0]["scenarios"] for r in sc["reasons"]]
    assert all("output expected to equal bought lamp for" in r for r in reasons), reasons


def _plugin_args() -> list[str]:
    """`-p` unless the installed package already registers the plugin by entry point."""
    eps = importlib.metadata.entry_points(group="pytest11")
    if any(ep.value == "swarm.scenarios.pytest_plugin" for ep in eps):
        return []
    return ["-p", "swarm.scenarios.pytest_plugin"]


def test_pytest_plugin_collects_and_runs_a_yaml_suite(pytester: pytest.Pytester, pack: str) -> None:
    text = SUITE.format(pack=pack).replace("agent: weather,", "agent: shop,")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makefile(".yaml", shop=text)
    pytester.makefile(".yaml", other="just: some yaml\n")  # not a suite: not collected
    result = pytester.runpytest(*_plugin_args(), "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*shop.yaml::lamp PASSED*",
            "*shop.yaml::weather FAILED*",
            "*expected agent shop, got weather*",
        ]
    )
    only = pytester.runpytest(*_plugin_args(), "-k", "lamp", "-p", "no:cacheprovider")
    only.assert_outcomes(passed=1, deselected=1)


def test_pytest_plugin_reports_a_malformed_suite(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makefile(".yaml", bad="name: x\nagents: m\nscenarios:\n  - name: 3\n")
    result = pytester.runpytest(*_plugin_args(), "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*bad.yaml:4:5: scenarios[[]0[]].steps: required field is missing*"]
    )


def test_swarm_test_does_not_run_a_suite_with_a_duplicate_key(
    cli: click.Group, pack: str, write: Callable[[str, str], Path], db_url: str
) -> None:
    good = write("a_shop.yaml", SUITE.format(pack=pack))
    # The failing expectation comes first; YAML's last-key-wins would drop it and pass.
    dup = write(
        "b_dup.yaml",
        f"name: dup\nagents: {pack}\nrouter: keyword\nscenarios:\n  - name: lamp\n"
        "    steps:\n      - user: buy a lamp\n        expect: {agent: weather}\n"
        "        expect: {status: done}\n",
    )
    res = CliRunner().invoke(cli, ["test", str(good.parent), "--db", db_url, "--json"])
    assert res.exit_code == 1
    data = _json(res.output)
    assert data["load_errors"] == [
        f"{dup}:9:9: scenarios[0].steps[0].expect: duplicate key (first at line 8)"
    ]
    assert [s["name"] for s in data["suites"]] == ["shop"]
    assert data["counts"]["passed"] == 2
