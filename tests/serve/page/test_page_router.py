"""The router's view of the page: switching versions (promote, roll back) in a real Chromium.

Its own module, so its own server: after a switch that server routes with the version chosen."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from swarm.router import current_version, list_versions

from .conftest import PageWatch, Served
from .test_page import open_page

pytestmark = pytest.mark.slow


def test_switch_router_versions(page: PageWatch, page_server: Served) -> None:
    older, newer = list_versions(page_server.models_dir)
    assert current_version(page_server.models_dir) == newer
    pg = open_page(page, "/#/router")
    rows = pg.locator("#versions-body tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("data-version", newer)  # newest first
    expect(pg.locator("#versions-serving")).to_contain_text(f"Serving {newer}.")

    pg.get_by_role("button", name=f"Roll back to {older}").click()
    expect(pg.locator("#versions-serving")).to_contain_text(f"Serving {older}.")
    assert current_version(page_server.models_dir) == older
    expect(pg.locator(f"#versions-body tr[data-version='{older}']")).to_have_class("serving")

    pg.get_by_role("button", name=f"Use {newer}").click()
    expect(pg.locator("#versions-serving")).to_contain_text(f"Serving {newer}.")
    assert current_version(page_server.models_dir) == newer
    assert page.errors == []
