"""Scenario files: the format, table expansion, and errors that name file:line:column and field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from swarm.errors import ScenarioError
from swarm.scenarios import load_suite, load_suites, parse_suite, select_scenarios

GOOD = """
name: shop
agents: some.module
scenarios:
  - name: buy
    steps:
      - user: buy a lamp
        expect: {agent: shop}
"""


def _error(text: str, file: str = "s.yaml") -> str:
    with pytest.raises(ScenarioError) as info:
        parse_suite(text, file)
    return str(info.value)


def test_wrong_type_names_line_column_and_field() -> None:
    text = GOOD.replace("user: buy a lamp", "user: [1, 2]")
    msg = _error(text)
    assert msg.startswith("s.yaml:7:15: scenarios[0].steps[0].user: expected a valid string")


def test_unknown_field_lists_the_expected_ones() -> None:
    text = GOOD.replace("{agent: shop}", "{agnet: shop}")
    msg = _error(text)
    assert msg.startswith("s.yaml:8:18: scenarios[0].steps[0].expect.agnet: unknown field 'agnet'")
    assert "expected one of: agent," in msg


def test_missing_field_points_at_its_mapping() -> None:
    msg = _error(GOOD.replace("agents: some.module\n", ""))
    assert msg.startswith("s.yaml:2:1: agents: required field is missing")


def test_bad_yaml_and_bad_literal() -> None:
    assert _error("name: x\nscenarios: [\n").startswith("s.yaml:3:1: (document): invalid YAML")
    msg = _error(GOOD.replace("{agent: shop}", "{status: finished}"))
    assert msg.startswith("s.yaml:8:26: scenarios[0].steps[0].expect.status: expected 'done'")
    assert "got 'finished'" in msg


def test_every_problem_is_listed() -> None:
    msg = _error(GOOD.replace("{agent: shop}", "{latency_ms: -1, state: 3}"))
    assert "(and 1 more)" in msg
    assert "expect.latency_ms: expected greater than 0" in msg
    assert "expect.state: expected a valid list" in msg


def test_a_malformed_file_does_not_stop_the_others(write: Callable[[str, str], Path]) -> None:
    write("a_good.yaml", GOOD)
    bad = write("b_bad.yaml", GOOD.replace("name: buy", "nme: buy"))
    loaded = load_suites([bad.parent])
    assert [s.name for s in loaded.suites] == ["shop"]
    assert len(loaded.errors) == 1
    msg = str(loaded.errors[0])
    assert msg.startswith(f"{bad}:4:5: scenarios[0].name: required field is missing")
    assert f"{bad}:4:5: scenarios[0].nme: unknown field 'nme'" in msg
    with pytest.raises(ScenarioError, match="no such file"):
        load_suites([bad.parent / "missing.yaml"])


def test_table_expands_one_scenario_into_many() -> None:
    suite = parse_suite(
        """
name: t
agents: m
scenarios:
  - name: stock of {item}
    tags: [stock]
    table:
      - {item: lamp, n: 2}
      - {item: chair, n: 0}
    steps:
      - user: how many {item}s
        expect:
          output: {equals: "{n}", regex: "\\\\d{1,3}"}
"""
    )
    first, second = suite.expanded()
    assert (first.name, second.name) == ("stock of lamp", "stock of chair")
    assert first.steps[0].user == "how many lamps"
    out = second.steps[0].expect.output
    assert out is not None and out.equals == 0 and out.regex == r"\d{1,3}"
    assert first.line == 5


def test_duplicate_names_after_expansion_are_an_error() -> None:
    text = GOOD + "  - name: buy\n    steps: [{user: x}]\n"
    assert "two scenarios are named 'buy'" in _error(text)


def test_keyword_and_tag_selection() -> None:
    suite = parse_suite(GOOD.replace("- name: buy", "- name: buy lamp\n    tags: [fast]"))
    (scenario,) = suite.expanded()
    assert select_scenarios("lamp and not chair")(suite, scenario)
    assert not select_scenarios("(chair or table) and shop")(suite, scenario)
    assert select_scenarios(None, ["slow,fast"])(suite, scenario)
    assert not select_scenarios(None, ["slow"])(suite, scenario)


def test_project_suites_load() -> None:
    root = Path(__file__).resolve().parents[2]
    files = sorted(root.glob("scenarios/*.yaml")) + sorted(root.glob("examples/*/*/suites/*.yaml"))
    assert files
    for f in files:
        assert load_suite(f).scenarios


# The two files of the `yaml_duplicates` case: PyYAML keeps the last of two equal keys and drops
# the first silently, which dropped a failing expectation and a whole list of scenarios.
DUP_EXPECT = """
name: duplicate expect key
agents: some.module
scenarios:
  - name: parcel
    steps:
      - user: where is my parcel
        expect:
          agent: billing
        expect:
          status: done
"""

DUP_SCENARIOS = """
name: duplicate scenarios key
agents: some.module
scenarios:
  - name: must fail
    steps: [{user: where is my parcel, expect: {agent: billing}}]
scenarios:
  - name: passes
    steps: [{user: send me my invoice, expect: {agent: billing}}]
"""


def test_a_duplicate_key_at_any_depth_names_file_line_column_and_field() -> None:
    msg = _error(DUP_EXPECT)
    assert msg == "s.yaml:10:9: scenarios[0].steps[0].expect: duplicate key (first at line 8)"
    msg = _error(DUP_SCENARIOS)
    assert msg == "s.yaml:7:1: scenarios: duplicate key (first at line 4)"
    deep = GOOD.replace("{agent: shop}", "{output: {contains: a, contains: b}}")
    assert _error(deep) == (
        "s.yaml:8:40: scenarios[0].steps[0].expect.output.contains: "
        "duplicate key (first at column 27)"
    )
    # Equal after parsing is equal: `1` and `0x1` are one key of a table row.
    table = GOOD.replace("  - name: buy\n", "  - name: buy\n    table: [{1: a, 0x1: b}]\n")
    assert "scenarios[0].table[0][1]: duplicate key" in _error(table)


def test_a_merge_may_override_what_it_brings_in() -> None:
    text = GOOD.replace(
        "        expect: {agent: shop}",
        "        expect: &e {agent: shop}\n      - user: buy a chair\n"
        "        expect: {<<: *e, agent: shop, status: done}",
    )
    suite = parse_suite(text, "s.yaml")
    assert suite.scenarios[0].steps[1].expect.status == "done"


def test_a_suite_with_a_duplicate_key_does_not_load_the_others_do(
    write: Callable[[str, str], Path],
) -> None:
    write("a_good.yaml", GOOD)
    expect = write("b_dup_expect.yaml", DUP_EXPECT)  # written without the leading blank line
    scenarios = write("c_dup_scenarios.yaml", DUP_SCENARIOS)
    loaded = load_suites([expect.parent])
    assert [s.name for s in loaded.suites] == ["shop"]
    assert [str(e) for e in loaded.errors] == [
        f"{expect}:9:9: scenarios[0].steps[0].expect: duplicate key (first at line 7)",
        f"{scenarios}:6:1: scenarios: duplicate key (first at line 3)",
    ]
