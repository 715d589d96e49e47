"""The trace room imports only what lies below it, and its writer process imports nothing of
swarm (it starts bare, in milliseconds): one write path, no cycle through `swarm.feedback`."""

from __future__ import annotations

import ast
from pathlib import Path

import swarm.trace

ROOM = Path(swarm.trace.__file__).parent
BELOW = {"swarm.models", "swarm.errors", "swarm.context"}


def swarm_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m == "swarm" or m.startswith("swarm.")}


def test_the_trace_room_imports_only_below_it() -> None:
    for path in ROOM.glob("*.py"):
        outside = {m for m in swarm_imports(path) if not m.startswith("swarm.trace")}
        assert outside <= BELOW, f"{path.name} imports {sorted(outside - BELOW)}"


def test_the_writer_process_module_needs_nothing_of_swarm() -> None:
    assert swarm_imports(ROOM / "_rows.py") == set()


def test_out_of_scope_has_one_definition() -> None:
    from swarm import feedback, models

    assert feedback.OUT_OF_SCOPE is models.OUT_OF_SCOPE
    defined = [
        p
        for p in Path(models.__file__).parent.rglob("*.py")
        if '\nOUT_OF_SCOPE = "' in p.read_text()
    ]
    assert defined == [Path(models.__file__)]
