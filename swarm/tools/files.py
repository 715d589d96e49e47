"""The built-in file tool: reads regular files only under its allowed roots; `..`, absolute paths
outside a root and symlinks that lead out are refused, and the opened file is checked again.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterable
from pathlib import Path, PurePath
from typing import Any

from swarm.errors import ConfigError, ToolError
from swarm.tools.base import Tool

__all__ = ["FileTool"]


class FileTool(Tool):
    """`read_file(path)` for a model: the text of a file under one of `roots`.

    A relative path is taken from the first root; an absolute one must lie inside a root. The
    body kept is capped at `max_bytes` (`truncated` says so). Every failure is a `ToolError`.
    """

    errors_are_tool_errors = True

    def __init__(
        self,
        roots: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        *,
        max_bytes: int = 256_000,
        name: str = "read_file",
    ) -> None:
        if isinstance(roots, str | os.PathLike):
            roots = [roots]
        self.roots = tuple(Path(r).resolve(strict=False) for r in roots)
        if not self.roots:
            raise ConfigError("FileTool needs at least one root directory")
        for root in self.roots:
            if not root.is_dir():
                raise ConfigError(f"FileTool root {str(root)!r} is not a directory")
        self.max_bytes = max_bytes
        super().__init__(
            self.read,
            name=name,
            description=(
                "Read a text file. Paths are relative to "
                f"{self.roots[0].name or str(self.roots[0])!r}; no '..'."
            ),
        )

    async def read(self, path: str) -> dict[str, Any]:
        """Read one file.

        Args:
            path: the file's path, relative to the root
        """
        return await asyncio.to_thread(self._read, path)

    def resolve(self, path: str) -> Path:
        """The real path `path` names inside a root, or ToolError saying why it is refused."""
        if not path or "\x00" in path:
            raise ToolError("path must be a non-empty string without NUL bytes")
        pure = PurePath(path)
        if ".." in pure.parts:
            raise ToolError(f"path {path!r} contains '..'; paths must stay inside the root")
        if pure.is_absolute():
            if not any(_inside(Path(os.path.normpath(pure)), root) for root in self.roots):
                raise ToolError(f"absolute path {path!r} is outside the allowed roots")
            candidate = Path(pure)
        else:
            candidate = self.roots[0] / pure
        try:
            real = candidate.resolve(strict=True)
        except FileNotFoundError:
            raise ToolError(f"no such file: {path!r}") from None
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
            raise ToolError(f"cannot resolve {path!r}: {exc}") from None
        if not any(_inside(real, root) for root in self.roots):
            raise ToolError(f"path {path!r} leads outside the allowed roots (through a symlink)")
        return real

    def _read(self, path: str) -> dict[str, Any]:
        real = self.resolve(path)
        # O_NOFOLLOW: the last component cannot have become a symlink since resolve();
        # O_NONBLOCK: opening a FIFO must not hang the worker thread.
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(real, flags)
        except OSError as exc:
            raise ToolError(f"cannot open {path!r}: {exc.strerror}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ToolError(f"{path!r} is not a regular file")
            opened = _fd_path(fd)
            # A directory above the file may have been swapped for a symlink in between; the
            # kernel's own name for the open file settles it.
            if opened is not None and not any(_inside(opened, root) for root in self.roots):
                raise ToolError(f"path {path!r} leads outside the allowed roots")
            data = os.read(fd, self.max_bytes + 1) if self.max_bytes >= 0 else b""
            while len(data) <= self.max_bytes:
                more = os.read(fd, self.max_bytes + 1 - len(data))
                if not more:
                    break
                data += more
        finally:
            os.close(fd)
        truncated = len(data) > self.max_bytes
        root = next(r for r in self.roots if _inside(real, r))
        return {
            "path": str(real.relative_to(root)),
            "size": info.st_size,
            "content": data[: self.max_bytes].decode("utf-8", errors="replace"),
            "truncated": truncated,
        }


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _fd_path(fd: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None
