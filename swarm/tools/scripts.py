"""The built-in script runner: runs only allow-listed programs, without a shell, with a timeout
that kills the whole process group and a cap on the output kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from swarm.errors import ConfigError, ToolError
from swarm.tools.base import Tool

__all__ = ["ScriptTool"]


class ScriptTool(Tool):
    """`run_script(script, args=[])` for a model: `script` is a name from the allow-list.

    ```python
    ScriptTool({"disk_usage": ["/usr/bin/du", "-sh"], "report": "scripts/report.py"})
    ```
    Each entry is a program path or an argv prefix; the program is resolved to an absolute path
    now, so a later PATH change cannot swap it. The model's `args` are appended as separate argv
    items: no shell ever sees them. Arguments that start with `-` are refused unless
    `allow_options`, so a model cannot slip in flags the script's author did not expect.
    A failure to start the program (an argument too long for the OS, `E2BIG`; a script gone
    since) is a `ToolError`, like every other failure of this tool.
    """

    errors_are_tool_errors = True

    def __init__(
        self,
        scripts: Mapping[str, str | os.PathLike[str] | Sequence[str]],
        *,
        timeout: float = 10.0,
        max_output: int = 64_000,
        max_args: int = 32,
        allow_options: bool = False,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        name: str = "run_script",
    ) -> None:
        if not scripts:
            raise ConfigError("ScriptTool needs at least one allowed script")
        self.scripts = {key: _argv(key, value) for key, value in scripts.items()}
        self.timeout = timeout
        self.max_output = max_output
        self.max_args = max_args
        self.allow_options = allow_options
        self.cwd = Path(cwd) if cwd is not None else None
        # A minimal environment by default: the agent's secrets stay out of the child.
        self.env = dict(env) if env is not None else {"PATH": os.defpath, "LANG": "C.UTF-8"}
        super().__init__(
            self.run,
            name=name,
            description=(
                f"Run one of these scripts: {', '.join(sorted(self.scripts))}. Returns its exit "
                f"code, stdout and stderr."
            ),
        )

    async def run(self, script: str, args: list[str] | None = None) -> dict[str, Any]:
        """Run an allowed script.

        Args:
            script: the script's name from the allowed list
            args: arguments passed to it, one list item per argument
        """
        argv = self.scripts.get(script)
        if argv is None:
            raise ToolError(f"script {script!r} is not allowed; allowed: {sorted(self.scripts)}")
        args = list(args or [])
        if len(args) > self.max_args:
            raise ToolError(f"too many arguments ({len(args)}); at most {self.max_args}")
        for arg in args:
            if "\x00" in arg:
                raise ToolError("arguments must not contain NUL bytes")
            if arg.startswith("-") and not self.allow_options:
                raise ToolError(f"argument {arg!r} looks like an option; options are not allowed")
        return await self._exec([*argv, *args], script)

    async def _exec(self, argv: list[str], script: str) -> dict[str, Any]:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self.cwd,
                env=self.env,
                # Its own process group, so a timeout kills what the script started as well.
                start_new_session=True,
            )
        except (OSError, ValueError) as exc:  # ValueError: a NUL or a bad cwd the OS refused
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            size = sum(len(a.encode()) + 1 for a in argv)
            raise ToolError(
                f"script {script!r} could not start: {why} ({len(argv)} arguments, {size} bytes)"
            ) from None
        assert proc.stdout is not None and proc.stderr is not None
        budget = _Budget(self.max_output)
        readers = asyncio.gather(
            _drain(proc.stdout, budget, proc), _drain(proc.stderr, budget, proc)
        )
        try:
            async with asyncio.timeout(self.timeout):
                stdout, stderr = await readers
                code = await proc.wait()
        except TimeoutError:
            _kill_group(proc)
            await _reap(proc, readers)
            raise ToolError(
                f"script {script!r} ran past its {self.timeout:g}s timeout and was killed"
            ) from None
        except BaseException:
            _kill_group(proc)
            await _reap(proc, readers)
            raise
        return {
            "exit_code": None if budget.exceeded else code,
            "stdout": stdout.decode("utf-8", errors="replace"),
            "stderr": stderr.decode("utf-8", errors="replace"),
            "truncated": budget.exceeded,
        }


class _Budget:
    """Bytes of output still to keep, shared by stdout and stderr."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.exceeded = False


async def _drain(stream: asyncio.StreamReader, budget: _Budget, proc: Any) -> bytes:
    kept: list[bytes] = []
    while piece := await stream.read(65536):
        if len(piece) > budget.left:
            kept.append(piece[: budget.left])
            budget.left = 0
            budget.exceeded = True
            # Past the cap the output is not wanted, and a script stuck writing to a full pipe
            # would only run into the timeout: stop it now.
            _kill_group(proc)
            break
        budget.left -= len(piece)
        kept.append(piece)
    return b"".join(kept)


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def _reap(proc: asyncio.subprocess.Process, readers: asyncio.Future[Any]) -> None:
    readers.cancel()
    with contextlib.suppress(BaseException):
        await readers
    await proc.wait()


def _argv(key: str, value: str | os.PathLike[str] | Sequence[str]) -> list[str]:
    parts = [os.fspath(value)] if isinstance(value, str | os.PathLike) else list(value)
    if not parts or not all(isinstance(p, str) and p for p in parts):
        raise ConfigError(f"script {key!r}: give a program path or a non-empty argv list")
    program = parts[0]
    if os.sep in program:
        path = Path(program).resolve()
        if not path.is_file() or not os.access(path, os.X_OK):
            raise ConfigError(f"script {key!r}: {program} is not an executable file")
        parts[0] = str(path)
    else:
        found = shutil.which(program)
        if found is None:
            raise ConfigError(f"script {key!r}: {program!r} is not found on PATH")
        parts[0] = found
    return parts
