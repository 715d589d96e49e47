"""The issue's walk-through in a browser: `swarm serve` started as a user starts it (a subprocess)
on the bank demo; the page watches a request go through, a refund waits for a person who approves
it in the page, a routing is corrected, and the router's versions are switched."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from swarm.agents import AgentRegistry
from swarm.router import current_version
from swarm.trace import TraceStore

from .conftest import PageWatch, Served, free_port, watch
from .page_routers import build_versions
from .test_page import open_page, submit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bank_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from swarm_examples import bank

    tmp = tmp_path_factory.mktemp("bank")
    registry = AgentRegistry()
    registry.add_pack(bank.PACK)
    build_versions(tmp / "models", registry)
    port = free_port()
    db_url = f"sqlite:///{tmp / 'swarm.db'}"
    log = (tmp / "serve.log").open("w+")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("swarm")), "serve", "--agents", "swarm_examples.bank"]
        + ["--router", "keyword", "--port", str(port), "--db", db_url]
        + ["--models-dir", str(tmp / "models"), "--log-level", "warning"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "SWARM_BANK_DB": f"sqlite:///{tmp / 'sandbox.db'}"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/v1/auth", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, Path(log.name).read_text()
            assert time.monotonic() < deadline, "swarm serve did not start"
            time.sleep(0.2)
        yield Served(url, db_url, tmp / "models")
    finally:
        proc.terminate()  # SIGTERM: swarm serve closes the swarm and exits
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def page(
    browser: object, bank_server: Served, request: pytest.FixtureRequest, screenshots: Path
) -> Iterator[PageWatch]:
    yield from watch(browser, bank_server, request, screenshots)


def test_the_bank_in_the_page(page: PageWatch, bank_server: Served, screenshots: Path) -> None:
    pg = open_page(page)

    # A refund of 129.99 waits for a person; the page asks, and they approve it there.
    refund = submit(pg, "I want a refund for payment T1002")
    article = pg.locator("article.task")
    expect(article).to_have_attribute("data-status", "waiting")
    question = article.locator(".approval .question")
    expect(question).to_contain_text("refund 129.99 GBP to card ending 4821?")
    pg.screenshot(path=str(screenshots / "bank-waiting.png"), full_page=True)
    article.locator(".approval").get_by_role("button", name="Approve").click()
    expect(article).to_have_attribute("data-status", "done")
    expect(pg.get_by_label("Output")).to_contain_text("refund_payment")
    expect(pg.locator("#event-log li[data-kind='approved']")).to_have_count(1)

    # A routing corrected: the card desk should have had it.
    lost = submit(pg, "my card ending 4821 has not arrived yet")
    expect(pg.locator("article.task")).not_to_have_attribute("data-status", "queued")
    routed = pg.locator("section.decision dd").first.inner_text()
    right = "cards" if routed != "cards" else "security"
    feedback = pg.locator("section.feedback")
    feedback.get_by_label("It belongs to").select_option(right)
    feedback.get_by_role("button", name="Correct the routing").click()
    expect(feedback.get_by_role("status")).to_contain_text(f"correction → {right}")
    pg.screenshot(path=str(screenshots / "bank-task.png"), full_page=True)

    # The router's versions: roll back to the first.
    pg.get_by_role("link", name="Router").click()
    expect(pg.locator("#versions-body tr")).to_have_count(2)
    pg.get_by_role("button", name="Roll back to v1-first").click()
    expect(pg.locator("#versions-serving")).to_contain_text("Serving v1-first.")
    pg.screenshot(path=str(screenshots / "bank-router.png"), full_page=True)

    assert current_version(bank_server.models_dir) == "v1-first"
    with TraceStore(bank_server.db_url) as store:
        assert store.task(refund)["status"] == "done"
        assert [a["status"] for a in store.approvals(task_id=refund)] == ["approved"]
        corrections = [r for r in store.feedback() if r["task_id"] == lost]
        assert [(r["kind"], r["agent"]) for r in corrections] == [("correction", right)]
    assert page.errors == []
