"""The page's files: shipped in the package, offline (nothing fetched from elsewhere), and built
without parsing server text as HTML."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

from swarm.serve.app import STATIC_DIR

ROOT = Path(__file__).resolve().parents[3]
ASSETS = sorted(p for p in STATIC_DIR.rglob("*") if p.is_file())


def test_the_page_has_its_three_files() -> None:
    assert {p.name for p in ASSETS} >= {"index.html", "app.js", "app.css"}


def test_every_asset_ships_in_the_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["swarm"]
    package = ROOT / "swarm"
    for asset in ASSETS:
        name = asset.relative_to(package).as_posix()
        # setuptools globs do not cross folders: "serve/static/*" misses "serve/static/x/y".
        assert any(fnmatch.fnmatch(name, g) and name.count("/") == g.count("/") for g in globs), (
            f"{name} is not in [tool.setuptools.package-data] swarm = {globs}"
        )


def test_nothing_is_fetched_from_another_host() -> None:
    remote = re.compile(r"""(https?:)?//[a-z0-9.-]+\.[a-z]{2,}""", re.I)
    for asset in ASSETS:
        text = asset.read_text()
        found = [m.group(0) for m in remote.finditer(text)]
        assert not found, f"{asset.name} refers to another host: {found}"
        assert "@import" not in text and "@font-face" not in text, asset.name


def test_no_server_text_is_parsed_as_html() -> None:
    script = (STATIC_DIR / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, f"app.js uses {sink}: build nodes and set textContent instead"
