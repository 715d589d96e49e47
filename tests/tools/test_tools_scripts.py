"""The script runner's guards, tried with hostile calls: shell metacharacters, scripts off the
list, option injection, a script that runs too long (it and its children die), too much output."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from swarm.errors import ConfigError, ToolError
from swarm.tools import ScriptTool


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    d = tmp_path / "bin"
    d.mkdir()
    script(d / "echo_args", 'for a in "$@"; do printf "[%s]\\n" "$a"; done\n')
    script(d / "fail", "echo oops >&2\nexit 3\n")
    script(d / "env", "env\n")
    # A child in the background that would leave a mark if it outlived the timeout.
    script(d / "sleeper", '(sleep 1; touch "$1") &\nsleep 30\n')
    script(d / "noisy", "while :; do echo 0123456789abcdef; done\n")
    (d / "not_executable").write_text("#!/bin/sh\necho hi\n")
    return d


@pytest.fixture
def runner(bin_dir: Path, tmp_path: Path) -> ScriptTool:
    work = tmp_path / "work"
    work.mkdir()
    return ScriptTool(
        {
            "echo_args": bin_dir / "echo_args",
            "fail": str(bin_dir / "fail"),
            "env": [str(bin_dir / "env")],
            "noisy": bin_dir / "noisy",
        },
        cwd=work,
        timeout=5,
    )


async def test_runs_an_allowed_script(runner: ScriptTool) -> None:
    out = await runner(script="echo_args", args=["one", "two words"])
    assert out == {"exit_code": 0, "stdout": "[one]\n[two words]\n", "stderr": "",
                   "truncated": False}


async def test_exit_code_and_stderr(runner: ScriptTool) -> None:
    out = await runner(script="fail")
    assert out["exit_code"] == 3 and out["stderr"] == "oops\n"


HOSTILE = [
    "; touch pwned1",
    "$(touch pwned2)",
    "`touch pwned3`",
    "| touch pwned4",
    "&& touch pwned5",
    "> pwned6",
    "*",
    "$HOME",
    "a\nb",
]


async def test_shell_metacharacters_are_just_text(runner: ScriptTool, tmp_path: Path) -> None:
    out = await runner(script="echo_args", args=HOSTILE)
    assert out["stdout"] == "".join(f"[{a}]\n" for a in HOSTILE)  # literal, unexpanded
    assert list((tmp_path / "work").iterdir()) == []  # nothing was created


@pytest.mark.parametrize(
    "name", ["rm", "sh", "/bin/sh", "../bin/echo_args", "echo_args; rm -rf /", "ECHO_ARGS", ""]
)
async def test_scripts_off_the_list_are_refused(runner: ScriptTool, name: str) -> None:
    with pytest.raises(ToolError, match="is not allowed"):
        await runner(script=name)


async def test_option_injection_is_refused_unless_allowed(bin_dir: Path) -> None:
    strict = ScriptTool({"echo_args": bin_dir / "echo_args"})
    for arg in ("-rf", "--output=/etc/passwd", "-"):
        with pytest.raises(ToolError, match="looks like an option"):
            await strict(script="echo_args", args=["ok", arg])
    loose = ScriptTool({"echo_args": bin_dir / "echo_args"}, allow_options=True)
    assert (await loose(script="echo_args", args=["-n"]))["stdout"] == "[-n]\n"


async def test_argument_limits(runner: ScriptTool) -> None:
    with pytest.raises(ToolError, match="too many arguments"):
        await runner(script="echo_args", args=["x"] * 33)
    with pytest.raises(ToolError, match="NUL"):
        await runner(script="echo_args", args=["a\x00b"])
    with pytest.raises(ToolError, match="args.0: Input should be a valid string"):
        await runner.invoke({"script": "echo_args", "args": [1]})


async def test_timeout_kills_the_script_and_its_children(bin_dir: Path, tmp_path: Path) -> None:
    mark = tmp_path / "survived"
    runner = ScriptTool({"sleeper": bin_dir / "sleeper"}, timeout=0.5, allow_options=True)
    started = time.monotonic()
    with pytest.raises(ToolError, match="ran past its 0.5s timeout and was killed"):
        await runner(script="sleeper", args=[str(mark)])
    assert time.monotonic() - started < 3
    await asyncio.sleep(1.5)  # the background child would have touched the mark by now
    assert not mark.exists()


async def test_output_over_the_cap_is_cut_and_the_script_stopped(bin_dir: Path) -> None:
    runner = ScriptTool({"noisy": bin_dir / "noisy"}, max_output=1000, timeout=10)
    started = time.monotonic()
    out = await runner(script="noisy")
    assert time.monotonic() - started < 5  # stopped at the cap, not at the timeout
    assert out["truncated"] is True and out["exit_code"] is None
    assert len(out["stdout"]) == 1000


async def test_the_environment_is_minimal(
    runner: ScriptTool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWARM_LLM_API_KEY", "sk-should-not-leak")
    out = await runner(script="env")
    assert "sk-should-not-leak" not in out["stdout"]
    assert "PATH=" in out["stdout"]


def test_config_is_checked_up_front(bin_dir: Path) -> None:
    with pytest.raises(ConfigError, match="not an executable file"):
        ScriptTool({"x": bin_dir / "not_executable"})
    with pytest.raises(ConfigError, match="not an executable file"):
        ScriptTool({"x": bin_dir / "missing"})
    with pytest.raises(ConfigError, match="not found on PATH"):
        ScriptTool({"x": "surely-no-such-program-here"})
    with pytest.raises(ConfigError, match="at least one"):
        ScriptTool({})


def test_programs_are_pinned_to_absolute_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = ScriptTool({"list": ["ls", "-1"]})
    program = runner.scripts["list"][0]
    assert os.path.isabs(program) and program.endswith("/ls")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert runner.scripts["list"][0] == program
