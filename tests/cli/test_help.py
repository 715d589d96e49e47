"""`swarm --help` lists every command without importing what the commands need to run (the trace
store, SQLAlchemy, the router's numerics): it is drawn in a fresh interpreter and its imports
checked. The time itself is a benchmark (BENCHMARKS.md), not a test."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

import swarm.cli
from swarm.cli import LAZY, main

HEAVY = ("sqlalchemy", "torch", "numpy", "onnxruntime", "pydantic", "httpx", "yaml", "asyncio")

PROBE = """
import json, sys
from swarm.cli import main
try:
    main(["--help"], prog_name="swarm")
except SystemExit as exc:
    assert exc.code == 0, exc.code
print(json.dumps(sorted(m for m in sys.modules if m.partition(".")[0] in %r)))
"""


@pytest.mark.slow
def test_swarm_help_imports_none_of_the_heavy_libraries() -> None:
    r = subprocess.run(
        [sys.executable, "-c", PROBE % (HEAVY,)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    *help_lines, imported = r.stdout.strip().splitlines()
    assert json.loads(imported) == []
    listed = {line.split()[0] for line in help_lines if line.startswith("  ") and line.split()}
    assert set(main.list_commands(click.Context(main))) <= listed
    assert "Train, evaluate and explain the learned router." in r.stdout


@pytest.mark.parametrize("name", sorted(LAZY))
def test_a_lazy_command_has_the_summary_of_the_real_one(name: str) -> None:
    """The summary read from the source is the one the imported command gives."""
    module, _, attr = LAZY[name].partition(":")
    summary = swarm.cli._docstring(module, attr)
    assert summary is not None, f"{LAZY[name]}: no docstring found in the source"
    real = main.get_command(click.Context(main), name)
    assert real is not None and real.callback is not None  # the command, not a summary
    assert click.Command(name, help=summary).get_short_help_str(80) == real.get_short_help_str(80)
    assert real.name == name
