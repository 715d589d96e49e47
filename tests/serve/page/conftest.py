"""Fixtures for the page's browser tests: the real `swarm serve` app on a real uvicorn server on a
free loopback port (`swarm.testing.serve.LiveServer`), over a swarm of this folder's agents, and a
headless Chromium (Debian's) driven by Playwright."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("SWARM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[3]
TOKEN = "page-test-token"

try:
    import playwright.sync_api  # noqa: F401  (the dev extra)
except ImportError:
    if os.environ.get("CI"):
        raise
    collect_ignore = [
        "test_page.py",
        "test_page_bank.py",
        "test_page_router.py",
        "test_page_token.py",
        "test_page_versions.py",
    ]
TIMEOUT_MS = 20_000
"""How long a page action or an `expect` waits: generous, the test machine may be busy."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A running server: its base URL, its trace store's URL and its router versions' folder."""

    url: str
    db_url: str
    models_dir: Path
    token: str = ""


@dataclass
class PageWatch:
    """A browser page and what went wrong in it: console errors and uncaught exceptions."""

    page: Any
    errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where the run keeps its screenshots: $SWARM_SCREENSHOTS, else storage/screenshots. A failed
    test leaves `failed-TEST.png` there; those of earlier runs are removed."""
    folder = Path(os.environ.get("SWARM_SCREENSHOTS") or ROOT / "storage" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("failed-*.png"):
        old.unlink()
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium; skips where it is missing, except in CI (`CI` set), where it fails."""
    if shutil.which(CHROMIUM) is None:
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is not installed at {CHROMIUM} (CI needs it)")
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _serve(
    tmp: Path, token: str = "", build: Callable[[Path], object] | None = None
) -> Iterator[Served]:
    """`build(models_dir)` saves the router versions (default: `page_routers.build_versions`)."""
    from swarm import Swarm
    from swarm.router.keyword import KeywordRouter
    from swarm.testing.serve import LiveServer

    from .page_agents import AGENTS
    from .page_routers import build_versions

    db_url = f"sqlite:///{tmp / 'swarm.db'}"
    models_dir = tmp / "models"
    (build or build_versions)(models_dir)
    agents = [a() for a in AGENTS]
    # The keyword router routes (fast, no encoder); the saved versions are what the page switches.
    swarm = Swarm(agents, router=KeywordRouter(agents), db=db_url, run_kind="serve")
    with LiveServer(swarm, token=token, models_dir=models_dir) as live:
        yield Served(live.url, db_url, models_dir, token)


@pytest.fixture(scope="module")
def page_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server without auth, for the whole module."""
    yield from _serve(tmp_path_factory.mktemp("page"))


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server that asks for the bearer token `TOKEN`."""
    yield from _serve(tmp_path_factory.mktemp("page-token"), TOKEN)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


def watch(
    browser: Any, server: Served, request: pytest.FixtureRequest, screenshots: Path
) -> Iterator[PageWatch]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=server.url)
    pg = context.new_page()
    watched = PageWatch(pg)
    pg.on("console", lambda m: watched.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: watched.errors.append(str(e)))
    pg.set_default_timeout(TIMEOUT_MS)
    try:
        yield watched
        if request.node.stash.get(_FAILED, False):  # what the page showed when the test failed
            pg.screenshot(path=str(screenshots / f"failed-{request.node.name}.png"), full_page=True)
    finally:
        context.close()


@pytest.fixture
def page(
    browser: Any, page_server: Served, request: pytest.FixtureRequest, screenshots: Path
) -> Iterator[PageWatch]:
    """A fresh browser tab (its own context) for `page_server`."""
    yield from watch(browser, page_server, request, screenshots)
