"""The bank demo, `swarm demo`'s main job: seed the sandbox, train (or reuse) the bank router, run
the bank and ops suites through it, show the summary, write the HTML report, point to the console.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from swarm.agents.bank.db import DEFAULT_BANK_URL, Bank
from swarm.agents.bank.training import BANK_AGENTS, bank_registry, ensure_bank_router

__all__ = ["SUITE_PATTERNS", "bank_suite_files", "run_demo"]

SUITE_PATTERNS = ("bank_*.yaml", "ops_*.yaml")


def bank_suite_files(root: str | Path | None = None) -> list[Path]:
    """The bank's suites: scenarios/bank_*.yaml and ops_*.yaml of the checkout (or `root`)."""
    folder = Path(root) if root is not None else _scenarios_dir()
    return sorted(p for pattern in SUITE_PATTERNS for p in folder.glob(pattern))


def _scenarios_dir() -> Path:
    # The checkout's scenarios/ when the package runs from one; else the working directory's.
    beside = Path(__file__).resolve().parents[3] / "scenarios"
    return beside if beside.is_dir() else Path("scenarios")


def run_demo(
    console: Any,
    db_url: str,
    models_dir: str | Path = "storage/models/bank",
    report_path: str | Path = "storage/reports/bank.html",
    *,
    suites: list[Path] | None = None,
    router: Any = None,
) -> bool:
    """Run the bank demo, printing to `console` (a rich Console); True when every suite passed.

    `db_url` is the trace store the suites are recorded in; `models_dir` holds the bank router
    (trained here when it holds none for today's data); `router` skips that (tests pass a fake).
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from swarm.scenarios import ScenarioRunner, load_suites, write_html
    from swarm.scenarios.views import ReportView

    registry = bank_registry()
    console.rule(f"[bold]swarm demo[/bold] · the bank: {len(registry)} agents from {BANK_AGENTS}")

    sandbox_url = os.environ.get("SWARM_BANK_DB", DEFAULT_BANK_URL)
    Bank.create(sandbox_url, reset=True).close()
    console.print(f"sandbox bank seeded at {sandbox_url} (3 customers, 4 accounts, 5 cards)")

    start = time.perf_counter()
    if router is None:
        with _progress(console, Progress, TextColumn, BarColumn, TimeElapsedColumn) as progress:
            router = ensure_bank_router(models_dir, registry, console=console, progress=progress)
    console.print(
        f"router {getattr(router, 'version', '?')} ready in {time.perf_counter() - start:.1f}s "
        f"({models_dir})"
    )

    loaded = load_suites(suites if suites is not None else bank_suite_files())
    runner = ScenarioRunner(
        router_factory=lambda _spec, _registry: router,
        db=db_url,
        models_dir=str(models_dir),
    )
    report = runner.run_sync(loaded.suites, load_errors=loaded.errors)
    console.print(ReportView(report))
    written = write_html(report, report_path)
    console.print(f"report written to {written}")
    console.rule("next")
    console.print(
        f"swarm console --agents {BANK_AGENTS} --router {models_dir}    # talk to the same swarm\n"
        f'swarm run "I lost my card ending 4821" --agents {BANK_AGENTS} --router {models_dir}\n'
        "swarm traces                                                       # what just ran"
    )
    return report.passed


@contextmanager
def _progress(
    console: Any, progress_cls: Any, text: Any, bar: Any, elapsed: Any
) -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """A training progress factory (description, total) -> advance(n) drawn as rich bars."""
    with progress_cls(
        text("[progress.description]{task.description}"), bar(), elapsed(), console=console
    ) as progress:

        def make(description: str, total: int) -> Callable[[int], None]:
            task = progress.add_task(description, total=total)
            return lambda n: progress.advance(task, n)

        yield make
