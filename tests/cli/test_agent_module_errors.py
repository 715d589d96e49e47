"""A broken or missing agents module is one line naming the file and line, exit 2, in every command
that loads agents (through the real `swarm` script in a subprocess); a file path works as
`--agents`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SWARM = str(Path(sys.executable).with_name("swarm"))

GOOD = """
    from swarm import agent

    @agent(examples=["hello there", "good morning"])
    async def greet(task, ctx):
        '''Greetings.'''
        return "hi"

    @agent(examples=["bye now", "see you later"])
    async def bye(task, ctx):
        '''Farewells.'''
        return "bye"
"""

BROKEN = {
    # name: (source, the line the error must name)
    "syntax_agents": (GOOD.replace("async def bye(task, ctx):", "async def bye(task, ctx)"), 10),
    "name_agents": (GOOD + "\n    HELP = undefined_helper()\n", 14),
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with good and broken agent files, and a router trained on the good one."""
    root = tmp_path_factory.mktemp("project")
    (root / "my_agents.py").write_text(textwrap.dedent(GOOD))
    for name, (source, _) in BROKEN.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    (root / "nested").mkdir()
    trained = swarm(
        root, "router", "train", "--agents", "./my_agents.py", "--encoder", "hash:64",
        "--members", "1", "--out", "models", "--json",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    (root / "model").symlink_to(json.loads(trained.stdout.splitlines()[-1])["path"])
    return root


def swarm(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SWARM_DB": f"sqlite:///{cwd / 'swarm.db'}", "COLUMNS": "80"}
    return subprocess.run(
        [SWARM, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


COMMANDS = {
    "run": ["run", "hello", "--router", "keyword", "--agents"],
    "console": ["console", "--router", "keyword", "--agents"],
    "router train": ["router", "train", "--encoder", "hash:64", "--out", "out", "--agents"],
    "router explain": ["router", "explain", "hello", "--model", "model", "--agents"],
}


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_a_broken_agents_module_is_one_line_naming_file_and_line(
    project: Path, command: str, broken: str
) -> None:
    line = BROKEN[broken][1]
    # A module name and a file path say the same: each broken module is given one way.
    spec = f"./{broken}.py" if broken == "syntax_agents" else broken
    r = swarm(project, *COMMANDS[command], spec)
    assert r.returncode == 2, (r.stdout, r.stderr)
    (message,) = r.stderr.strip().splitlines()
    assert message.startswith(f"error: {project / broken}.py:{line}"), message
    kind = "SyntaxError: expected ':'" if broken == "syntax_agents" else "NameError: name"
    assert f"agents module {broken!r} failed to import: {kind}" in message


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_module_not_found_says_where_it_looked(project: Path, command: str) -> None:
    args = [str(project / a) if a == "model" else a for a in COMMANDS[command]]
    r = swarm(project / "nested", *args, "my_agentz")
    assert r.returncode == 2, (r.stdout, r.stderr)
    (message,) = r.stderr.strip().splitlines()
    assert "cannot import agents module 'my_agentz': no module named 'my_agentz'" in message
    assert f"looked in the current folder ({project / 'nested'})" in message
    assert "PYTHONPATH" in message and "./my_agentz.py" in message
    missing = swarm(project, *args, "./nested/my_agentz.py")
    assert missing.returncode == 2
    assert "agents file 'nested/my_agentz.py' not found" in missing.stderr


@pytest.mark.slow
def test_a_file_path_is_an_agents_module_from_any_folder(project: Path) -> None:
    r = swarm(project / "nested", "run", "see you later", "--router", "keyword", "--json",
              "--agents", "../my_agents.py")  # fmt: skip
    assert r.returncode == 0, r.stderr
    (result,) = json.loads(r.stdout.splitlines()[-1])["results"]
    assert result["agent"] == "bye" and result["output"] == "bye"
    explained = swarm(project, "router", "explain", "hello there", "--model", "model",
                      "--agents", f"{project / 'my_agents.py'}:greet", "--json")  # fmt: skip
    assert explained.returncode == 2  # the router knows two agents, the attribute names one
    assert "was trained for other agents (gone: bye)" in explained.stderr


@pytest.mark.slow
def test_swarm_test_reports_a_broken_module_as_that_suite_not_run(project: Path) -> None:
    suite = "name: s\nagents: {}\nrouter: keyword\nscenarios: [{{name: x, steps: [{{user: hi}}]}}]"
    (project / "broken.yaml").write_text(suite.format("./syntax_agents.py"))
    (project / "good.yaml").write_text(suite.format("my_agents").replace("name: s", "name: g"))
    r = swarm(project, "test", "broken.yaml", "good.yaml", "--json")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    suites = {s["name"]: s for s in json.loads(r.stdout.splitlines()[-1])["suites"]}
    assert suites["s"]["error"].startswith(f"{project / 'syntax_agents.py'}:10:")
    assert suites["g"]["error"] is None


def test_import_errors_leave_nothing_half_imported(tmp_path: Path) -> None:
    from swarm.agents.pack import import_agents_module
    from swarm.errors import AgentDefinitionError, ConfigError

    (tmp_path / "name_agents_x.py").write_text(textwrap.dedent(BROKEN["name_agents"][0]))
    with pytest.raises(AgentDefinitionError, match=r"name_agents_x\.py:14: agents module"):
        import_agents_module(str(tmp_path / "name_agents_x.py"))
    assert "name_agents_x" not in sys.modules  # a half-imported module is not left behind
    with pytest.raises(ConfigError, match="expected a dotted module path"):
        import_agents_module("my agents")
