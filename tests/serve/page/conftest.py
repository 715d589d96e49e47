"""Fixtures for the page's browser tests: the real app on a real uvicorn server on a free loopback
port, and a headless Chromium (Debian's) driven by Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A running server: its base URL, its trace store's URL and its models folder."""

    url: str
    db_url: str
    models_dir: Path
    app: Any = None


@pytest.fixture(scope="module")
def screenshots() -> Path:
    """Where the run keeps its screenshots: $SWARM_SCREENSHOTS, else storage/screenshots."""
    folder = Path(os.environ.get("SWARM_SCREENSHOTS") or ROOT / "storage" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium; skips where it is missing, except in CI (`CI` set)."""
    if shutil.which(CHROMIUM) is None:
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is not installed at {CHROMIUM} (CI needs it)")
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class PageWatch:
    """A browser page and the errors it logged (console errors and uncaught exceptions)."""

    page: Any
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def page(browser: Any, server: Served) -> Iterator[PageWatch]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=server.url)
    pg = context.new_page()
    watch = PageWatch(pg)
    pg.on("console", lambda m: watch.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: watch.errors.append(str(e)))
    pg.set_default_timeout(15_000)
    try:
        yield watch
    finally:
        context.close()


def _run_uvicorn(app: Any) -> tuple[Any, threading.Thread, str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                       timeout_graceful_shutdown=2)
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from swarm import Swarm
    from swarm.router.keyword import KeywordRouter

    from page_agents import AGENTS
    from page_routers import build_versions

    tmp = tmp_path_factory.mktemp("page")
    db_url = f"sqlite:///{tmp / 'swarm.db'}"
    models_dir = tmp / "models"
    build_versions(models_dir, tmp / "cache")

    def make_swarm() -> Swarm:
        agents = [a() for a in AGENTS]
        return Swarm(agents, router=KeywordRouter(agents), db=db_url, models_dir=str(models_dir))

    from page_stub_app import create_app

    app = create_app(make_swarm, models_dir)
    uv, thread, url = _run_uvicorn(app)
    try:
        yield Served(url, db_url, models_dir, app)
    finally:
        uv.should_exit = True
        thread.join(timeout=30)
