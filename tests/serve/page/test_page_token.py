"""The page against a server that asks for a bearer token: it asks once, keeps it for the tab."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from swarm.trace import TraceStore

from .conftest import TOKEN, PageWatch, Served, watch

pytestmark = pytest.mark.slow


@pytest.fixture
def page(
    browser: Any, token_server: Served, request: pytest.FixtureRequest, screenshots: Path
) -> Iterator[PageWatch]:
    yield from watch(browser, token_server, request, screenshots)


def test_asks_for_the_token_once_and_sends_it(
    page: PageWatch, token_server: Served, screenshots: Path
) -> None:
    pg = page.page
    requests: list[Any] = []
    pg.on("request", lambda r: requests.append(r) if "/v1/" in r.url else None)
    pg.goto("/")
    dialog = pg.get_by_role("dialog", name="This server needs a token")
    expect(dialog).to_be_visible()
    pg.screenshot(path=str(screenshots / "token.png"))

    # A wrong token is refused, and the page asks again, saying so.
    dialog.get_by_label("API token").fill("not-the-token")
    dialog.get_by_role("button", name="Use token").click()
    expect(dialog.get_by_role("alert")).to_have_text("That token was refused; try again.")
    dialog.get_by_label("API token").fill(TOKEN)
    dialog.get_by_role("button", name="Use token").click()
    expect(dialog).to_be_hidden()
    expect(pg.locator("body")).to_have_attribute("data-ready", "true")
    expect(pg.locator("#stream-state")).to_have_attribute("data-state", "live")

    pg.get_by_label("Request").fill("what is my account balance")
    pg.get_by_role("button", name="Submit").click()
    article = pg.locator("article.task")
    expect(article).to_have_attribute("data-status", "done")
    expect(pg.locator("#event-log li[data-kind='done']")).to_have_count(1)
    task_id = article.get_attribute("data-task-id")
    with TraceStore(token_server.db_url) as store:
        assert store.task(str(task_id))["agent"] == "accounts"

    # Kept for the tab: a reload does not ask again.
    requests.clear()
    pg.reload()
    expect(pg.locator("body")).to_have_attribute("data-ready", "true")
    expect(dialog).to_be_hidden()
    sent = [r for r in requests if "/v1/auth" not in r.url]
    assert sent and all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in sent)
    # The only errors: the requests the wrong token had refused.
    assert page.errors and all("status of 401" in e for e in page.errors)
