"""The web page in a real headless Chromium, against the real app on a real uvicorn server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from swarm.trace import TraceStore

from .conftest import PageWatch, Served

pytestmark = pytest.mark.slow


def open_page(watch: PageWatch, path: str = "/") -> Any:
    page = watch.page
    page.goto(path)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#stream-state")).to_have_attribute("data-state", "live")
    return page


def check_markup(page: Any) -> None:
    """Ids are unique, and every form control has a label (a name a screen reader can say)."""
    duplicates = page.evaluate(
        """() => {
            const ids = [...document.querySelectorAll('[id]')].map((e) => e.id);
            return ids.filter((id, i) => ids.indexOf(id) !== i);
        }"""
    )
    assert duplicates == []
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter((e) => e.labels.length === 0 && !e.getAttribute('aria-label'))
            .map((e) => e.outerHTML)"""
    )
    assert unlabelled == []


def submit(page: Any, text: str) -> str:
    """Submit `text` in the page's form; returns the task id the page opened (waiting until it is
    a new one: the task shown before stays visible until the page opens the next)."""
    article = page.locator("article.task")
    before = article.get_attribute("data-task-id") if article.count() else None
    page.get_by_label("Request").fill(text)
    page.get_by_role("button", name="Submit").click()
    expect(article).to_be_visible()
    if before is not None:
        expect(article).not_to_have_attribute("data-task-id", before)
    task_id = article.get_attribute("data-task-id")
    assert task_id
    return task_id


def test_submit_and_watch_events_arrive(
    page: PageWatch, page_server: Served, screenshots: Path
) -> None:
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
    with TraceStore(page_server.db_url) as store:
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
    pg.emulate_media(color_scheme="dark")
    pg.screenshot(path=str(screenshots / "task-dark.png"), full_page=True)

    assert tree["status"] == "done"
    check_markup(pg)
    assert page.errors == []


def test_feedback_wrong_belongs_to_another_agent_is_stored(
    page: PageWatch, page_server: Served, screenshots: Path
) -> None:
    pg = open_page(page)
    task_id = submit(pg, "my card has not arrived")
    expect(pg.locator("article.task")).to_have_attribute("data-status", "done")
    expect(pg.locator("section.decision .bar-row.chosen .bar-label")).to_have_text("cards")

    feedback = pg.locator("section.feedback")
    # No agent is chosen for the person: until one is, there is no correction to send.
    picker = feedback.get_by_label("It belongs to")
    expect(picker).to_have_value("")
    expect(picker.locator("option:checked")).to_have_text("choose an agent…")
    correct = feedback.get_by_role("button", name="Correct the routing")
    expect(correct).to_be_disabled()
    picker.select_option("accounts")
    expect(correct).to_be_enabled()
    picker.select_option("")
    expect(correct).to_be_disabled()
    picker.select_option("accounts")
    correct.click()
    expect(feedback.get_by_role("status")).to_have_text("Stored: correction → accounts. Thank you.")
    expect(picker).to_have_value("accounts")  # kept when the task's view is rebuilt

    with TraceStore(page_server.db_url) as store:
        rows = [r for r in store.feedback() if r["task_id"] == task_id]
    assert [(r["kind"], r["agent"], r["routed_agent"]) for r in rows] == [
        ("correction", "accounts", "cards")
    ]

    # The router's view counts it: a task of accounts that went to cards.
    pg.get_by_role("link", name="Router").click()
    cell = pg.locator("table.matrix td[title='accounts → cards: 1']")
    expect(cell).to_have_class("miss")
    expect(pg.locator("#metrics-summary")).to_contain_text("feedback accuracy 0.0%")
    expect(pg.locator("#metrics-summary")).to_contain_text("people judged (feedback)")
    # Per agent: no task went to accounts (no precision), none belonged to cards (no recall).
    per_agent = pg.locator("table.per-label")
    accounts = per_agent.locator("tr[data-agent='accounts'] td")
    cards = per_agent.locator("tr[data-agent='cards'] td")
    expect(accounts.nth(0)).to_have_text("— (no task was sent to it)")
    expect(accounts.nth(1)).to_have_text("0.0%")
    expect(cards.nth(0)).to_have_text("0.0%")
    expect(cards.nth(1)).to_have_text("— (no judged task belonged to it)")
    expect(cards.nth(2)).to_have_text("0")
    pg.screenshot(path=str(screenshots / "router.png"), full_page=True)
    assert page.errors == []


def test_approve_and_deny_waiting_tasks(
    page: PageWatch, page_server: Served, screenshots: Path
) -> None:
    import httpx

    pg = open_page(page)
    first = submit(pg, "I want a refund")
    article = pg.locator("article.task")
    expect(article).to_have_attribute("data-status", "waiting")
    expect(pg.locator("#event-log li[data-kind='waiting']")).to_have_count(1)
    # The task's own page asks the question; the Approvals tab counts it.
    question = article.locator(".approval .question")
    expect(question).to_have_text("refund 120.00 to card ending 4821?")
    expect(pg.locator("#approvals-count")).to_have_text("1")
    pg.screenshot(path=str(screenshots / "waiting.png"), full_page=True)

    pg.get_by_role("link", name="Approvals").click()
    waiting = pg.locator("#approval-list > li")
    expect(waiting).to_have_count(1)
    approve = waiting.first
    first_approval = approve.get_attribute("data-approval-id")
    approve.get_by_label("Note").fill("customer verified")
    # Another question arrives (from another client) while the person types: the note stays.
    second = httpx.post(f"{page_server.url}/v1/tasks", json={"text": "give me my money back"})
    second_id = second.json()["id"]
    expect(waiting).to_have_count(2)
    expect(pg.locator("#approvals-count")).to_have_text("2")
    expect(approve.get_by_label("Note")).to_have_value("customer verified")
    pg.screenshot(path=str(screenshots / "approvals.png"), full_page=True)
    check_markup(pg)  # the question shows in its task's view and in this one

    with TraceStore(page_server.db_url) as store:
        ids = {a["task_id"]: a["id"] for a in store.approvals(status="waiting")}
    assert ids[first] == first_approval
    second = second_id
    approve.get_by_role("button", name="Approve").click()
    expect(waiting).to_have_count(1)
    deny = pg.locator(f"#approval-list li[data-approval-id='{ids[second]}']")
    deny.get_by_role("button", name="Deny").click()
    expect(waiting).to_have_count(0)
    expect(pg.locator("#approval-empty")).to_be_visible()
    expect(pg.locator("#approvals-count")).to_be_hidden()
    decided = pg.locator("#decided-body tr")
    expect(decided).to_have_count(2)
    expect(pg.locator(f"#decided-body tr[data-approval-id='{ids[first]}']")).to_contain_text(
        "approved"
    )
    expect(pg.locator(f"#decided-body tr[data-approval-id='{ids[second]}']")).to_contain_text(
        "denied"
    )
    pg.screenshot(path=str(screenshots / "approvals-decided.png"), full_page=True)

    # Each task went on with its answer (a short id, as people copy it, opens the task too).
    pg.goto(f"/#/tasks/{first[-8:]}")
    expect(pg.locator("article.task")).to_have_attribute("data-status", "done")
    expect(pg.get_by_label("Output")).to_contain_text('"refund": "sent"')
    expect(pg.locator("article.task")).to_have_attribute("data-task-id", first)
    expect(pg.locator("ol.timeline .tl-bar.kind-approval")).to_have_count(1)
    pg.screenshot(path=str(screenshots / "approved-task.png"), full_page=True)
    pg.goto(f"/#/tasks/{second}")
    expect(pg.locator("article.task")).to_have_attribute("data-status", "done")
    expect(pg.get_by_label("Output")).to_contain_text('"refund": "refused"')
    with TraceStore(page_server.db_url) as store:
        decided = {a["task_id"]: a for a in store.approvals()}
    assert decided[first]["status"] == "approved"
    assert decided[first]["note"] == "customer verified"
    assert decided[first]["decided_by"] == decided[second]["decided_by"] == "page"
    assert decided[second]["status"] == "denied"
    assert page.errors == []


def test_tasks_from_elsewhere_appear_live_and_text_stays_text(
    page: PageWatch, page_server: Served
) -> None:
    import httpx

    pg = open_page(page)
    hostile = '<img src=x onerror="window.__owned = 1"><b>bold</b> & co'
    # Submitted by another client: the page hears of it through the event stream, no reload.
    created = httpx.post(f"{page_server.url}/v1/tasks", json={"text": hostile}).json()
    row = pg.locator(f"#task-list li[data-task-id='{created['id']}']")
    expect(row.locator(".task-text")).to_have_text(hostile)
    expect(row.locator(".chip")).to_have_text("rejected")  # no agent shares a word with it
    row.get_by_role("link").click()
    expect(pg.locator("blockquote.task-request")).to_have_text(hostile)
    expect(pg.locator("section.decision")).to_contain_text("none (out of scope)")
    # Shown as text, never parsed as markup.
    assert pg.locator("main img, main b").count() == 0
    assert pg.evaluate("window.__owned") is None
    assert page.errors == []


def test_keyboard_submit_and_a_narrow_screen(page: PageWatch, page_server: Served) -> None:
    pg = open_page(page)
    pg.set_viewport_size({"width": 420, "height": 900})
    pg.get_by_label("Request").focus()
    pg.keyboard.type("show my statement")
    pg.keyboard.press("Control+Enter")
    article = pg.locator("article.task")
    expect(article).to_have_attribute("data-status", "done")
    expect(article.locator("section.decision .bar-row.chosen .bar-label")).to_have_text("accounts")
    # Nothing wider than the screen: one column, no sideways scrolling.
    assert pg.evaluate("document.documentElement.scrollWidth") <= 420
    assert page.errors == []


def test_streamed_tokens_read_as_one_line_and_right_is_stored(
    page: PageWatch, page_server: Served
) -> None:
    pg = open_page(page)
    task_id = submit(pg, "write a letter to the customer")
    expect(pg.locator("article.task")).to_have_attribute("data-status", "done")
    tokens = pg.locator("#event-log li[data-kind='token']")
    expect(tokens).to_have_count(1)
    expect(tokens.locator(".event-text")).to_have_text("Dear customer, your card is on its way.")

    feedback = pg.locator("section.feedback")
    feedback.get_by_role("button", name="Right").click()
    expect(feedback.get_by_role("status")).to_have_text("Stored: good. Thank you.")
    with TraceStore(page_server.db_url) as store:
        rows = [r for r in store.feedback() if r["task_id"] == task_id]
    assert [(r["kind"], r["routed_agent"]) for r in rows] == [("good", "letters")]
    assert page.errors == []


def test_submit_to_a_chosen_agent(page: PageWatch, page_server: Served) -> None:
    pg = open_page(page)
    pg.get_by_label("Agent", exact=True).select_option("accounts")
    task_id = submit(pg, "my card has not arrived")  # the router would say cards
    article = pg.locator("article.task")
    expect(article).to_have_attribute("data-status", "done")
    expect(article.locator("section.decision dd").nth(1)).to_have_text("forced")
    with TraceStore(page_server.db_url) as store:
        row = store.task(task_id)
    assert (row["forced_agent"], row["agent"]) == ("accounts", "accounts")
    assert page.errors == []


def test_after_the_stream_drops_the_page_catches_up(page: PageWatch, page_server: Served) -> None:
    import httpx

    pg = page.page
    cut = {"on": True}
    # The event stream cannot be reached until `cut` is off (the rest of the API can).
    pg.route("**/v1/events", lambda route: route.abort() if cut["on"] else route.continue_())
    pg.goto("/")
    expect(pg.locator("body")).to_have_attribute("data-ready", "true")
    expect(pg.locator("#stream-state")).to_have_attribute("data-state", "down")
    # Submitted while the page hears nothing: it misses the task's events.
    created = httpx.post(f"{page_server.url}/v1/tasks", json={"text": "show my statement"}).json()
    for _ in range(200):  # the API's read flushes the store's writer first
        if httpx.get(f"{page_server.url}/v1/tasks/{created['id']}").json()["status"] == "done":
            break
        time.sleep(0.05)
    cut["on"] = False
    expect(pg.locator("#stream-state")).to_have_attribute("data-state", "live")
    row = pg.locator(f"#task-list li[data-task-id='{created['id']}']")
    expect(row.locator(".chip")).to_have_text("done")
    assert all("ERR_FAILED" in e for e in page.errors), page.errors
