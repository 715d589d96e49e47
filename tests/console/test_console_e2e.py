"""Through a pseudo-terminal with the real encoder: a newcomer runs `swarm console` on the embedded
defaults, asks, corrects one routing and retrains. One correction is no evidence that the new
router is better (it trained on that very text), so the gate keeps it beside and the old one
serves; a person who chooses it (`swarm router use`) gets that case right."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from console_driver import ConsoleProcess, plain

from swarm.trace import TraceStore

TEXT = "my parcel came but I was charged twice for it"
# The text is about an order and a charge: the router may also ask "billing or orders?".
ROUTE = re.compile(r"route (?:ambiguous: )?(orders|billing|accounts|tech_support) \(")


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
    assert "kept beside" in screen and "still serves" in screen, screen
    chosen = re.search(r"swarm router use (\S+)`", screen)
    assert chosen, screen
    screen = plain(c.send(TEXT))  # the serving router has not changed its mind
    found = ROUTE.search(screen)
    assert found and found.group(1) == first, screen
    c.quit()
    with TraceStore(c.db) as store:
        (correction,) = store.feedback()
        assert correction["kind"] == "correction" and correction["agent"] == wanted
        assert correction["routed_agent"] == first
    serving = (models / "CURRENT").read_text().strip()
    assert serving and serving != chosen.group(1)
    # A person chooses the version kept beside: it serves, and has learnt the correction.
    used = subprocess.run(
        [str(Path(sys.executable).with_name("swarm")), "router", "use", chosen.group(1),
         "--models-dir", str(models)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert used.returncode == 0, used.stderr
    c = spawn("--models-dir", str(models), timeout=240)
    screen = plain(c.send(TEXT))
    found = ROUTE.search(screen)
    assert found and found.group(1) == wanted, screen
    c.quit()
