"""The issue's definition of done, through a pseudo-terminal with the real encoder: a newcomer
runs `swarm console` on the embedded defaults, asks, corrects one routing, retrains, and sees the
router get that case right."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from console_driver import ConsoleProcess, plain

from swarm.trace import TraceStore

TEXT = "my parcel came but I was charged twice for it"
ROUTE = re.compile(r"route (orders|billing|accounts|tech_support) \(")


@pytest.mark.slow
def test_correct_one_routing_retrain_and_it_is_right(
    spawn: Callable[..., ConsoleProcess], tmp_path: Path
) -> None:
    models = tmp_path / "models"
    # First start trains the router for the help desk (about 10-20 s on two cores).
    c = spawn("--models-dir", str(models), timeout=240)
    screen = plain(c.send(TEXT))
    found = ROUTE.search(screen)
    assert found, screen
    first = found.group(1)
    wanted = "orders" if first != "orders" else "billing"
    assert "correction recorded" in plain(c.send(f"/route {wanted}"))
    c.child.sendline("/retrain")
    screen = plain(c.expect_prompt(timeout=240))
    assert "held-out evaluation" in screen and "cases people labelled" in screen
    assert "switched: router" in screen, screen
    screen = plain(c.send(TEXT))
    found = ROUTE.search(screen)
    assert found and found.group(1) == wanted, screen
    c.quit()
    with TraceStore(c.db) as store:
        (correction,) = store.feedback()
        assert correction["kind"] == "correction" and correction["agent"] == wanted
        assert correction["routed_agent"] == first
    assert (models / "CURRENT").read_text().strip() != ""
