"""The file tool's guards, tried with hostile paths: `..`, absolute paths, symlinks out of the
root, special files, and files bigger than the cap."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from swarm.errors import ConfigError, ToolError
from swarm.tools import FileTool


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "root"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "guide.md").write_text("# Guide\nhello")
    outside = tmp_path / "secret.txt"
    outside.write_text("TOP SECRET")
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "key.pem").write_text("KEY")
    return {"root": root, "outside": outside, "private": tmp_path / "private"}


async def test_reads_a_file_under_the_root(tree: dict[str, Path]) -> None:
    out = await FileTool(tree["root"])(path="docs/guide.md")
    assert out == {"path": "docs/guide.md", "size": 13, "content": "# Guide\nhello",
                   "truncated": False}


@pytest.mark.parametrize(
    "path",
    ["../secret.txt", "docs/../../secret.txt", "docs/../guide.md", "..", "./../secret.txt",
     "docs/..", "..\\..\\secret.txt".replace("\\", "/")],
)
async def test_dot_dot_is_refused_even_when_it_would_stay_inside(
    tree: dict[str, Path], path: str
) -> None:
    with pytest.raises(ToolError, match=r"contains '\.\.'"):
        await FileTool(tree["root"])(path=path)


async def test_absolute_paths(tree: dict[str, Path]) -> None:
    files = FileTool(tree["root"])
    for path in (str(tree["outside"]), "/etc/passwd", "/proc/self/environ", "//etc/passwd"):
        with pytest.raises(ToolError, match="outside the allowed roots"):
            await files(path=path)
    inside = await files(path=str(tree["root"] / "docs" / "guide.md"))
    assert inside["content"].startswith("# Guide")


async def test_symlinks_that_lead_out_are_refused(tree: dict[str, Path]) -> None:
    root = tree["root"]
    (root / "link-to-secret").symlink_to(tree["outside"])
    (root / "link-to-dir").symlink_to(tree["private"], target_is_directory=True)
    (root / "docs" / "relative").symlink_to("../../secret.txt")
    (root / "etc").symlink_to("/etc", target_is_directory=True)
    files = FileTool(root)
    for path in ("link-to-secret", "link-to-dir/key.pem", "docs/relative", "etc/passwd"):
        with pytest.raises(ToolError, match="outside the allowed roots"):
            await files(path=path)


async def test_symlinks_inside_the_root_are_fine(tree: dict[str, Path]) -> None:
    (tree["root"] / "shortcut.md").symlink_to(tree["root"] / "docs" / "guide.md")
    out = await FileTool(tree["root"])(path="shortcut.md")
    assert out["content"] == "# Guide\nhello" and out["path"] == "docs/guide.md"


async def test_symlink_loops_and_missing_files(tree: dict[str, Path]) -> None:
    (tree["root"] / "loop").symlink_to(tree["root"] / "loop")
    files = FileTool(tree["root"])
    with pytest.raises(ToolError, match="cannot resolve|no such file"):
        await files(path="loop")
    with pytest.raises(ToolError, match="no such file: 'nope.txt'"):
        await files(path="nope.txt")


async def test_only_regular_files(tree: dict[str, Path]) -> None:
    os.mkfifo(tree["root"] / "pipe")
    files = FileTool(tree["root"])
    with pytest.raises(ToolError, match="not a regular file"):
        await asyncio.wait_for(files(path="pipe"), timeout=5)  # must not hang on the FIFO
    with pytest.raises(ToolError, match="not a regular file"):
        await files(path="docs")


async def test_nul_bytes_and_empty_paths(tree: dict[str, Path]) -> None:
    files = FileTool(tree["root"])
    for path in ("docs/guide.md\x00.png", ""):
        with pytest.raises(ToolError, match="NUL|non-empty"):
            await files(path=path)


async def test_big_files_are_capped(tree: dict[str, Path]) -> None:
    (tree["root"] / "big.log").write_bytes(b"a" * 100_000)
    out = await FileTool(tree["root"], max_bytes=1000)(path="big.log")
    assert out["truncated"] is True and len(out["content"]) == 1000 and out["size"] == 100_000


async def test_several_roots(tree: dict[str, Path]) -> None:
    files = FileTool([tree["root"], tree["private"]])
    assert (await files(path=str(tree["private"] / "key.pem")))["content"] == "KEY"
    with pytest.raises(ToolError, match="no such file"):
        await files(path="key.pem")  # relative paths start at the first root


async def test_a_root_given_through_a_symlink(tree: dict[str, Path], tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(tree["root"], target_is_directory=True)
    assert (await FileTool(alias)(path="docs/guide.md"))["content"].startswith("# Guide")


def test_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        FileTool(tmp_path / "missing")
    spec = FileTool(tmp_path).spec["function"]
    assert spec["name"] == "read_file" and spec["parameters"]["required"] == ["path"]
