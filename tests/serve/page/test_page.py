"""The web page in a real headless Chromium, against the real app on a real uvicorn server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import PageWatch, Served
from playwright.sync_api import expect

from swarm.trace import TraceStore

pytestmark = pytest.mark.slow


def open_page(watch: PageWatch, path: str = "/") -> Any:
    page = watch.page
    page.goto(path)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#stream-state")).to_have_attribute("data-state", "live")
    return page


def submit(page: Any, text: str) -> str:
    """Submit `text` in the page's form; returns the task id the page opened."""
    page.get_by_label("Request").fill(text)
    page.get_by_role("button", name="Submit").click()
    article = page.locator("article.task")
    expect(article).to_be_visible()
    task_id = article.get_attribute("data-task-id")
    assert task_id
    return task_id


def test_submit_and_watch_events_arrive(page: PageWatch, server: Served, screenshots: Path) -> None:
    pg = open_page(page)
    task_id = submit(pg, "I don't recognise this payment")

    log = pg.locator("#event-log")
    # The events of the task and of the child it delegated, as they happen.
    for kind in ("routed", "started", "delegated", "span", "done"):
        expect(log.locator(f"li[data-kind='{kind}']").first).to_be_visible()
    expect(log.locator(f"li[data-kind='done'][data-task-id='{task_id}']")).to_have_count(1)
    article = pg.locator("article.task")
    expect(article).to_have_attribute("data-status", "done")
    expect(pg.get_by_label("Output")).to_contain_text('"dispute": "opened"')

    # The routing decision: the chosen agent with its bar first.
    decision = pg.locator("section.decision")
    expect(decision.locator(".bar-row.chosen .bar-label")).to_have_text("disputes")
    # The tree shows the delegated child; the timeline a bar for each task and span.
    tree = pg.locator("ul.tree")
    expect(tree.locator("li li")).to_have_count(1)
    expect(tree.locator("li li .task-agent")).to_have_text("cards")
    with TraceStore(server.db_url) as store:
        tree = store.task_tree(task_id)
    spans = [(s["kind"], s["name"]) for node in (tree, *tree["children"]) for s in node["spans"]]
    assert {("delegate", "cards"), ("tool", "open_dispute"), ("tool", "card_status")} <= set(spans)
    timeline = pg.locator("ol.timeline")
    expect(timeline.locator(".tl-bar")).to_have_count(2 + len(spans))  # a bar a task and a span
    expect(timeline.locator(".tl-bar.kind-tool")).to_have_count(2)
    # The list on the side shows the task, done.
    row = pg.locator(f"#task-list li[data-task-id='{task_id}']")
    expect(row.locator(".chip")).to_have_text("done")
    pg.screenshot(path=str(screenshots / "task.png"), full_page=True)

    assert tree["status"] == "done"
    assert page.errors == []
