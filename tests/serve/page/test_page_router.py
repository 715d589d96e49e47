"""The router's view of the page: switching versions (promote, roll back) in a real Chromium.

Its own module, so its own server: after a switch that server routes with the version chosen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from swarm.router import current_version, list_versions

from .conftest import PageWatch, Served
from .test_page import open_page, submit

pytestmark = pytest.mark.slow


def routed_by(pg: Any, text: str) -> Any:
    """Submit `text` in the page; the decision's section once the task is done."""
    pg.get_by_role("link", name="Tasks").click()
    submit(pg, text)
    expect(pg.locator("article.task")).to_have_attribute("data-status", "done")
    return pg.locator("section.decision")


def test_switch_router_versions(page: PageWatch, page_server: Served, screenshots: Path) -> None:
    older, newer = list_versions(page_server.models_dir)
    assert current_version(page_server.models_dir) == newer
    pg = open_page(page, "/#/router")
    # The server started with the keyword router; the saved versions wait to be used.
    expect(pg.locator("#versions-serving")).to_contain_text("This server routes with keyword.")
    rows = pg.locator("#versions-body tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("data-version", newer)  # newest first
    expect(pg.locator("#versions-serving")).to_contain_text(f"Serving {newer}.")

    pg.get_by_role("button", name=f"Roll back to {older}").click()
    expect(pg.locator("#versions-serving")).to_contain_text(f"Serving {older}.")
    assert current_version(page_server.models_dir) == older
    expect(pg.locator(f"#versions-body tr[data-version='{older}']")).to_have_class("serving")
    pg.screenshot(path=str(screenshots / "versions.png"), full_page=True)

    # The running server routes with it now, and shows the examples behind a decision.
    decision = routed_by(pg, "my card has not arrived")
    expect(decision.locator("dd").nth(4)).to_have_text(older)
    first = decision.locator("ol.neighbours li").first
    expect(first.locator(".neighbour-text")).to_have_text("“my card has not arrived”")
    expect(first.locator(".chip")).to_have_text("cards")
    expect(first.locator(".bar-value")).to_have_text("1.00")
    pg.screenshot(path=str(screenshots / "decision.png"), full_page=True)

    pg.get_by_role("link", name="Router").click()
    pg.get_by_role("button", name=f"Use {newer}").click()
    expect(pg.locator("#versions-serving")).to_contain_text(f"Serving {newer}.")
    assert current_version(page_server.models_dir) == newer
    decision = routed_by(pg, "block my card")
    expect(decision.locator("dd").nth(4)).to_have_text(newer)
    assert page.errors == []
