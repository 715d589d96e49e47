"""The router's versions as training and learning leave them: a trained one (out-of-fold accuracy
on its training data), one the promotion gate promoted on suites and one it kept beside. Each
figure says what it was measured on, each version the gate's verdict, the table fits its card,
and using a kept-beside version asks first (in the page, not `window.confirm`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from swarm.router import current_version

from .conftest import PageWatch, Served, _serve, watch
from .page_routers import KEPT_BESIDE, PROMOTED, TRAINED, build_gated_versions
from .test_page import open_page

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gated_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _serve(tmp_path_factory.mktemp("page-gated"), build=build_gated_versions)


@pytest.fixture
def page(
    browser: Any, gated_server: Served, request: pytest.FixtureRequest, screenshots: Path
) -> Iterator[PageWatch]:
    yield from watch(browser, gated_server, request, screenshots)


def inside_card(pg: Any, selector: str) -> list[str]:
    """The elements matching `selector` in the versions card that are not wholly visible inside
    it (cut off by the card's edge or by a scrolled table): their text, for the message."""
    return pg.evaluate(
        """(selector) => {
            const card = document.getElementById('versions-card');
            const box = card.getBoundingClientRect();
            const bad = [];
            for (const node of card.querySelectorAll(selector)) {
                const r = node.getBoundingClientRect();
                let clip = box;
                const wrap = node.closest('.table-wrap');
                if (wrap) clip = wrap.getBoundingClientRect();
                if (r.width === 0 || r.left < clip.left - 0.5 || r.right > clip.right + 0.5
                    || r.left < box.left || r.right > box.right) {
                    bad.push(`${node.textContent} [${r.left}, ${r.right}] in [${clip.left}, ${clip.right}]`);
                }
            }
            return bad;
        }""",
        selector,
    )


@pytest.mark.parametrize("width", [1024, 1280, 1400])
def test_the_versions_table_fits_its_card(
    page: PageWatch, gated_server: Served, screenshots: Path, width: int
) -> None:
    pg = page.page
    pg.set_viewport_size({"width": width, "height": 800})
    pg = open_page(page, "/#/router")
    expect(pg.locator("#versions-body tr")).to_have_count(3)
    pg.screenshot(path=str(screenshots / f"versions-{width}.png"), full_page=True)
    buttons = pg.locator("#versions-body button")
    expect(buttons).to_have_count(2)  # all but the serving one
    for i in range(2):
        expect(buttons.nth(i)).to_be_visible()
    assert inside_card(pg, "#versions-body button") == []
    assert page.errors == []
