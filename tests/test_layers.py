"""The house rules of ARCHITECTURE.md, checked in `make test`: the import-linter contracts in
pyproject.toml (rooms import downwards, no cycles, examples outside), and no demo pack or data set
inside the framework package."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACK_LINE = re.compile(r"^\w+ = Pack\(", re.M)  # a module that defines a pack
LINT = (
    "import sys; from importlinter.cli import lint_imports; "
    "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))"
)


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "examples")])}
    return subprocess.run(
        [sys.executable, "-c", LINT], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_the_import_contracts_hold() -> None:
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("swarm/models.py", "import swarm.cli", "rooms import downwards only BROKEN"),
        ("swarm/scenarios/runner.py", "import swarm.testing", "rooms import downwards only BROKEN"),
        ("swarm/agents/pack.py", "import swarm_examples", "never imports the example packs BROKEN"),
        ("swarm/tools/files.py", "import swarm.tools.http", "modules of one package BROKEN"),
    ],
)
def test_an_upward_import_or_a_cycle_fails_the_check(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "swarm", tmp_path / "swarm", ignore=skip)
    shutil.copytree(
        ROOT / "examples" / "swarm_examples",
        tmp_path / "examples" / "swarm_examples",
        ignore=shutil.ignore_patterns("__pycache__", "*.csv"),
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    if "cycle" in contract or "one package" in contract:  # the reverse edge makes the cycle
        reverse = tmp_path / "swarm/tools/http.py"
        reverse.write_text(reverse.read_text() + "\nimport swarm.tools.files  # noqa\n")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    done = lint(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert contract in done.stdout


def test_the_framework_package_holds_no_demo_pack_or_data_set() -> None:
    package = ROOT / "swarm"
    files = [p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    data = [p for p in files if p.suffix in {".csv", ".tsv", ".jsonl", ".parquet", ".arrow"}]
    assert not data, data
    suites = [p for p in files if p.suffix in {".yaml", ".yml"}]
    assert not suites, suites
    big = [p for p in files if p.stat().st_size > 100_000]
    assert not big, big
    packs = [p for p in files if p.suffix == ".py" and PACK_LINE.search(p.read_text())]
    assert not packs, packs
    assert {p.name for p in (package / "agents").iterdir() if p.suffix == ".py"} == {
        "__init__.py",
        "base.py",
        "pack.py",
        "registry.py",
    }
