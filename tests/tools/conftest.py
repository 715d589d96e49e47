"""Fixtures for the tools room: a small real HTTP site on 127.0.0.1 (see tools_site.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tools_site import Site


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    s = Site()
    await s.start()
    try:
        yield s
    finally:
        await s.close()

