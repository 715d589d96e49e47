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
                    bad.push(`${node.textContent} [${r.left}, ${r.right}]`
                        + ` in [${clip.left}, ${clip.right}]`);
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


def test_a_phone_shows_each_version_as_a_block(page: PageWatch, screenshots: Path) -> None:
    pg = page.page
    pg.set_viewport_size({"width": 390, "height": 844})
    pg = open_page(page, "/#/router")
    expect(pg.locator("#versions-body tr")).to_have_count(3)
    pg.screenshot(path=str(screenshots / "versions-phone.png"), full_page=True)
    for i in range(2):
        expect(pg.locator("#versions-body button").nth(i)).to_be_visible()
    assert inside_card(pg, "#versions-body button") == []
    # No sideways scrolling, of the page or of the table inside its card.
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    wrap = pg.locator("#versions-card .table-wrap")
    assert wrap.evaluate("(w) => w.scrollWidth <= w.clientWidth")
    assert page.errors == []


def test_gate_verdicts_and_what_each_figure_was_measured_on(page: PageWatch) -> None:
    pg = open_page(page, "/#/router")
    kept = pg.locator(f"#versions-body tr[data-version='{KEPT_BESIDE}']")
    promoted = pg.locator(f"#versions-body tr[data-version='{PROMOTED}']")
    trained = pg.locator(f"#versions-body tr[data-version='{TRAINED}']")
    expect(kept).to_have_attribute("data-gate", "kept")
    expect(kept.locator("td.gate .chip")).to_have_text("kept beside")
    expect(kept.locator(".gate-reason")).to_contain_text("worse on 46 held-out texts")
    expect(promoted.locator("th .chip")).to_have_text("serving")
    expect(promoted.locator("td.gate .chip")).to_have_text("promoted")
    expect(trained.locator("td.gate .chip")).to_have_text("trained")

    # The suite figure and the out-of-fold one are named apart, each with where it came from.
    figures = promoted.locator("td.figures li")
    expect(figures).to_have_count(2)
    expect(figures.nth(0)).to_contain_text("suite accuracy 17.4%")
    expect(figures.nth(0)).to_contain_text("on suites scenarios/bank (46 texts)")
    expect(figures.nth(0)).to_contain_text("the version serving then: 15.2%")
    expect(figures.nth(1)).to_contain_text("out-of-fold accuracy on training data 93.6%")
    expect(figures.nth(1)).to_contain_text("250 examples")
    only = trained.locator("td.figures li")
    expect(only).to_have_count(1)
    expect(only).to_contain_text("out-of-fold accuracy on training data")
    # Rolling back passes over the version kept beside: it goes to the one that served before.
    expect(pg.get_by_role("button", name=f"Roll back to {TRAINED}")).to_be_visible()
    assert page.errors == []


def test_using_a_kept_beside_version_asks_first(
    page: PageWatch, gated_server: Served, screenshots: Path
) -> None:
    native: list[str] = []
    page.page.on("dialog", lambda d: (native.append(d.message), d.dismiss()))
    pg = open_page(page, "/#/router")
    dialog = pg.locator("#use-dialog")
    use_kept = pg.get_by_role("button", name=f"Use {KEPT_BESIDE}")

    # Cancelled (the button, then Escape): nothing changes.
    use_kept.click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"The gate kept {KEPT_BESIDE} beside")
    expect(dialog).to_contain_text("worse on 46 held-out texts")
    expect(pg.locator("#use-cancel")).to_be_focused()
    pg.locator("#use-cancel").click()
    expect(dialog).to_be_hidden()
    expect(use_kept).to_be_focused()
    use_kept.click()
    expect(dialog).to_be_visible()
    pg.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert current_version(gated_server.models_dir) == PROMOTED
    expect(pg.locator("#versions-serving")).to_contain_text(f"Serving {PROMOTED}.")

    # Confirmed: it serves.
    use_kept.click()
    pg.screenshot(path=str(screenshots / "versions-confirm.png"))
    pg.get_by_role("button", name=f"Use {KEPT_BESIDE} anyway").click()
    expect(pg.locator("#versions-serving")).to_contain_text(f"Serving {KEPT_BESIDE}.")
    assert current_version(gated_server.models_dir) == KEPT_BESIDE

    # A version the gate did not keep beside switches at once, as before.
    pg.get_by_role("button", name=f"Use {PROMOTED}").click()
    expect(pg.locator("#versions-serving")).to_contain_text(f"Serving {PROMOTED}.")
    expect(dialog).to_be_hidden()
    assert current_version(gated_server.models_dir) == PROMOTED
    assert native == []  # no window.confirm
    assert page.errors == []
